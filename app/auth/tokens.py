"""Bearer tokens: random, shown once, stored as SHA-256 (they are high-entropy, so a fast hash
is enough and lookups by hash never compare secrets byte by byte).

A device token has no fixed lifetime but expires when unused: one not used for
VIGIL_DEVICE_TOKEN_IDLE_DAYS (counted from its last use, or from its issue if never used) stops
working, as a tablet lost or put in a drawer should. A rotated device token keeps working until
the end of its overlap (its ``expires_at``, app/users/service.py)."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.config import get_settings
from app.models import AccessToken, DeviceClock, User, user_sites


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


def idle_since(token: AccessToken) -> datetime:
    return token.last_seen_at or token.created_at


def idle_expired(token: AccessToken, now: datetime) -> bool:
    """A device token unused for longer than VIGIL_DEVICE_TOKEN_IDLE_DAYS."""
    if token.kind != TokenKind.DEVICE:
        return False
    return now - idle_since(token) > timedelta(days=get_settings().device_token_idle_days)


def why_refused(session: Session, plaintext: str) -> str:
    """Why a token that :func:`resolve` refused does not work, and what to do: a device
    token that expired unused or whose rotation overlap ended is told so; every other
    refusal is the token kind's :func:`refusal`."""
    token = session.scalar(
        select(AccessToken).where(AccessToken.token_hash == hash_token(plaintext))
    )
    if token is None or token.kind != TokenKind.DEVICE or token.revoked_at is not None:
        return refusal(plaintext)
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return refusal(plaintext)
    now = utcnow()
    rotate = f"POST /api/v1/devices/{user.id}/token"
    if token.expires_at is not None and token.expires_at <= now:
        return (
            f"this device token was replaced by a new one and stopped working at "
            f"{token.expires_at.isoformat()} (the end of its rotation overlap); use the new "
            f"token, or ask an admin for another ({rotate})"
        )
    if idle_expired(token, now):
        days = get_settings().device_token_idle_days
        used = (
            f"last used at {token.last_seen_at.isoformat()}"
            if token.last_seen_at
            else f"never used since it was issued at {token.created_at.isoformat()}"
        )
        return (
            f"this device token expired after {days} days unused ({used}); ask an admin for "
            f"a new device token ({rotate})"
        )
    return refusal(plaintext)


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


@dataclass(frozen=True)
class Resolved:
    token: AccessToken
    user: User
    site_ids: frozenset[uuid.UUID]
    device_clock: DeviceClock | None  # a device's clock estimate, if it has one


# Built once, the hash bound at execution (docs/architecture.md, "statements built once").
_RESOLVE = (
    select(AccessToken, User, DeviceClock, user_sites.c.site_id)
    .join(User, User.id == AccessToken.user_id)
    .outerjoin(DeviceClock, DeviceClock.device_id == User.id)
    .outerjoin(user_sites, user_sites.c.user_id == User.id)
    .where(AccessToken.token_hash == bindparam("token_hash"))
)


def resolve(session: Session, plaintext: str) -> Resolved | None:
    """The live token, its active user and the user's sites, or None (unknown, expired,
    revoked, user disabled, a device token unused for too long).

    One query, as every request asks it: the user's sites and a device's clock estimate
    (app/auth/device_clock.py) come joined to the token."""
    found = session.execute(_RESOLVE, {"token_hash": hash_token(plaintext)}).all()
    if not found:
        return None
    token, user = found[0][0], found[0][1]
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if idle_expired(token, now):
        return None
    if not user.active:
        return None
    sites = frozenset(row[3] for row in found if row[3] is not None)
    return Resolved(token, user, sites, found[0][2])
