"""Signing in with a username and a password.

What a caller learns is the same whether the username exists or not: one message for every
refusal, and the same work (one password verification) on every path; an unknown username is
checked against a dummy hash. After ``login_max_failures`` consecutive failures the account is
locked for the next of ``login_lockout_minutes``; while it is locked the password is not even
looked at. Every attempt is audited, and a refusal is *returned*, not raised, so that the request
transaction commits the failure counter and the audit record (an exception would roll them back).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.recorder import change_reason, record_event
from app.auth import passwords, tokens
from app.clock import utcnow
from app.config import get_settings
from app.models import AccessToken, User
from app.permissions import Role

REFUSED = "the username or password is wrong, or the account may not sign in with a password"


@dataclass(frozen=True)
class SignedIn:
    user: User
    token: AccessToken
    plaintext: str
    ttl: timedelta

    @property
    def expires_at(self) -> datetime:
        return self.token.created_at + self.ttl


@dataclass(frozen=True)
class Refused:
    """401 (wrong credentials) or 429 (locked until ``retry_at``)."""

    status_code: int
    detail: str
    retry_at: datetime | None = None


@lru_cache(maxsize=4)
def _dummy_hash(hasher: PasswordHash) -> str:
    return hasher.hash(secrets.token_urlsafe(24))


def _verify_nothing(password: str) -> None:
    """Spend what a real verification costs, so a refusal takes as long on every path."""
    passwords.password_hash.verify(password, _dummy_hash(passwords.password_hash))


def lockout_period(failures: int) -> timedelta | None:
    """How long the ``failures``-th consecutive failure locks the account (None: not at all)."""
    settings = get_settings()
    over = failures - settings.login_max_failures
    if over < 0:
        return None
    periods = settings.login_lockout_minutes
    return timedelta(minutes=periods[min(over, len(periods) - 1)])


def login(session: Session, username: str, password: str) -> SignedIn | Refused:
    user = session.scalars(
        select(User).where(User.username == username).with_for_update()
    ).one_or_none()
    now = utcnow()
    if user is None:
        _verify_nothing(password)
        record_event(
            session,
            "login_failed",
            "users",
            "unknown",
            after={"username": username, "why": "unknown username"},
        )
        return Refused(401, REFUSED)

    if user.locked_until is not None and user.locked_until > now:
        _verify_nothing(password)
        record_event(
            session,
            "login_locked",
            "users",
            str(user.id),
            after={"username": user.username, "locked_until": user.locked_until},
        )
        return Refused(429, _locked_message(user.locked_until, now), user.locked_until)

    if (
        not user.active
        or user.role == Role.DEVICE
        or not passwords.password_usable(user.password_hash)
    ):
        _verify_nothing(password)
        why = "account deactivated" if not user.active else "no password sign-in"
        return _failed(session, user, now, why)

    matches, rehashed = passwords.password_hash.verify_and_update(password, user.password_hash)
    if not matches:
        return _failed(session, user, now, "wrong password")

    session.info["actor"] = f"{user.role}:{user.username}"  # as Principal.actor
    with change_reason(session, "signed in"):
        user.failed_login_count = 0
        user.locked_until = None
        user.last_login_at = now
        if rehashed is not None:
            user.password_hash = rehashed
    ttl = timedelta(minutes=get_settings().session_ttl_minutes)
    with change_reason(session, "signed in"):
        token, plaintext = tokens.issue(session, user, tokens.TokenKind.SESSION, ttl=ttl)
    record_event(
        session,
        "login",
        "users",
        str(user.id),
        after={"username": user.username, "token_id": token.id, "expires_at": token.expires_at},
    )
    return SignedIn(user, token, plaintext, ttl)


def _failed(session: Session, user: User, now: datetime, why: str) -> Refused:
    failures = user.failed_login_count + 1
    period = lockout_period(failures)
    with change_reason(session, f"failed sign-in: {why}"):
        user.failed_login_count = failures
        if period is not None:
            user.locked_until = now + period
    record_event(
        session,
        "login_failed",
        "users",
        str(user.id),
        after={
            "username": user.username,
            "why": why,
            "failed_login_count": failures,
            "locked_until": user.locked_until if period is not None else None,
        },
    )
    return Refused(401, REFUSED)


def _locked_message(until: datetime, now: datetime) -> str:
    minutes = max(1, -(-int((until - now).total_seconds()) // 60))
    return (
        "too many failed sign-ins: this account is locked until "
        f"{until.isoformat(timespec='seconds')} (about {minutes} min); try again then, "
        "or ask an admin to unlock it"
    )
