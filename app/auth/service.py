"""Credentials after sign-in: API tokens, revocation, sign-out.

Every token row is audited by the recorder (created, revoked); the token itself is returned
once by `app.auth.tokens.issue` and never stored. Signing in with a password is app/auth/login.py.
"""

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.audit.recorder import change_reason
from app.auth import tokens
from app.auth.tokens import TokenKind
from app.clock import utcnow
from app.config import get_settings
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.models import AccessToken, User
from app.permissions import Role


def get_token(session: Session, token_id: uuid.UUID) -> AccessToken:
    token = session.get(AccessToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} does not exist")
    return token


def revoke(
    session: Session, token: AccessToken, reason: str, *, action: str = "revoke"
) -> AccessToken:
    """Stop a token working from now on; the row stays, with when and why."""
    if token.revoked_at is not None:
        raise Conflict(f"token {token.id} was already revoked at {token.revoked_at.isoformat()}")
    with change_reason(session, reason, action):
        token.revoked_at = utcnow()
        token.revoked_reason = reason[:500]
    return token


def revoke_all(session: Session, user_id: uuid.UUID, reason: str) -> int:
    """Revoke every token of a user that is not revoked yet; returns how many."""
    live = session.scalars(
        select(AccessToken)
        .where(AccessToken.user_id == user_id, AccessToken.revoked_at.is_(None))
        .order_by(AccessToken.id)
    ).all()
    for token in live:
        revoke(session, token, reason)
    return len(live)


def sign_out(session: Session, token_id: uuid.UUID) -> None:
    revoke(session, get_token(session, token_id), "signed out", action="logout")


def issue_api_token(
    session: Session, user: User, current_token_id: uuid.UUID, label: str, ttl_days: int | None
) -> tuple[AccessToken, str]:
    """A long-lived token for an API client (an export job, a script). It acts with the role of
    the user who asked for it, so a sponsor's token is as read-only as the sponsor.

    Only a password sign-in may mint one: a leaked API or device token must not be able to
    make itself a successor that outlives its revocation."""
    settings = get_settings()
    if user.role == Role.DEVICE:
        raise Forbidden("devices use the token an admin issued them; they cannot make others")
    if get_token(session, current_token_id).kind != TokenKind.SESSION:
        raise Forbidden("API tokens are issued from a password sign-in, not from another token")
    days = settings.api_token_ttl_days if ttl_days is None else ttl_days
    if days > settings.api_token_max_ttl_days:
        raise InvalidInput(
            f"ttl_days: an API token lives at most {settings.api_token_max_ttl_days} days"
        )
    with change_reason(session, "API token issued"):
        return tokens.issue(session, user, TokenKind.API, label=label, ttl=timedelta(days=days))


def tokens_of(user_id: uuid.UUID, *, live_only: bool) -> Select[Any]:
    """A user's tokens (newest last, for cursor pagination); ``live_only`` leaves out revoked
    and expired ones."""
    stmt = select(AccessToken).where(AccessToken.user_id == user_id)
    if live_only:
        now = utcnow()
        stmt = stmt.where(
            AccessToken.revoked_at.is_(None),
            (AccessToken.expires_at.is_(None)) | (AccessToken.expires_at > now),
        )
    return stmt


def revoke_as(
    session: Session, token_id: uuid.UUID, reason: str, *, user_id: uuid.UUID, is_admin: bool
) -> AccessToken:
    """Revoke a token on behalf of a caller: their own, or any token for an admin. Somebody
    else's token is reported as not existing, as for any record outside a caller's reach."""
    token = session.get(AccessToken, token_id)
    if token is None or (token.user_id != user_id and not is_admin):
        raise NotFound(f"token {token_id} does not exist")
    return revoke(session, token, reason)
