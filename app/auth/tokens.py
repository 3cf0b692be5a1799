"""Bearer tokens: random, shown once, stored as SHA-256 (they are high-entropy, so a fast hash
is enough and lookups by hash never compare secrets byte by byte)."""

import hashlib
import secrets
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import AccessToken, User


class TokenKind(StrEnum):
    SESSION = "session"  # a login (web client cookie or bearer), short-lived
    API = "api"  # a long-lived token for an API client, e.g. a sponsor's read-only export job
    DEVICE = "device"  # a bedside tablet, bound to one site


def _prefix(kind: TokenKind) -> str:
    return f"vgl_{kind.value[0]}_"


def refusal(plaintext: str) -> str:
    """What to do next with a token that does not work, by its kind (its prefix says it)."""
    if plaintext.startswith(_prefix(TokenKind.DEVICE)):
        return (
            "the device token is unknown or revoked, or its device deactivated; ask an admin "
            "for a new device token"
        )
    if plaintext.startswith(_prefix(TokenKind.API)):
        return (
            "the API token is unknown, expired or revoked; sign in and create a new one "
            "(POST /api/v1/auth/tokens)"
        )
    return "the token is unknown, expired or revoked; sign in again (POST /api/v1/auth/login)"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session,
    user: User,
    kind: TokenKind,
    *,
    label: str | None = None,
    ttl: timedelta | None = None,
) -> tuple[AccessToken, str]:
    """Create a token for ``user``; returns the row and the token, which is never stored."""
    plaintext = f"{_prefix(kind)}{secrets.token_urlsafe(32)}"
    now = utcnow()
    row = AccessToken(
        user_id=user.id,
        kind=kind.value,
        token_hash=hash_token(plaintext),
        label=label,
        created_at=now,
        expires_at=now + ttl if ttl else None,
    )
    session.add(row)
    session.flush()
    return row, plaintext


def resolve(session: Session, plaintext: str) -> tuple[AccessToken, User] | None:
    """The live token and its active user, or None (unknown, expired, revoked, user disabled)."""
    found = session.execute(
        select(AccessToken, User)
        .join(User, User.id == AccessToken.user_id)
        .where(AccessToken.token_hash == hash_token(plaintext))
    ).first()
    if found is None:
        return None
    token, user = found
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if not user.active:
        return None
    return token, user
