"""Re-authentication: both components (username and password) again, for an act that needs
them every time: an e-signature (21 CFR 11.200(a)(1)), an emergency unblinding.

A wrong password counts toward the sign-in lockout (app/auth/login.py), so a stolen token
cannot be used to guess the password here; while locked, the password is not looked at.
A refusal is audited (:class:`Refused`: what was refused, on which record) in the request's
transaction, so the errors below must be answered, not raised through the unit of work (a raised
error rolls the audit record and the failure count back).
"""

from dataclasses import dataclass, field
from typing import Any

from pwdlib.exceptions import UnknownHashError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.audit.recorder import change_reason, record_event
from app.auth import passwords
from app.auth.login import lockout_period
from app.auth.principal import Principal
from app.errors import VigilError
from app.models import User


class ReauthenticationFailed(VigilError):
    """The username or password given is not the caller's."""

    status_code = 401
    title = "Re-authentication failed"
    slug = "reauthentication-failed"


class AccountLocked(ReauthenticationFailed):
    """Too many failed password checks (sign-in or re-authentication): none until it ends."""

    status_code = 429
    title = "Account locked"
    slug = "account-locked"


class NotTheSigner(ReauthenticationFailed):
    """The username given is not the caller's: nobody acts for someone else (11.200(a)(2))."""

    status_code = 403
    title = "Not the signer"
    slug = "not-the-signer"


@dataclass(frozen=True)
class Refused:
    """The audit record of a refused re-authentication: its action (``signature_refused``), the
    record it was for, and what may be said of the attempt (never the password, nor a username
    that is not the caller's: it could be a password typed in the wrong box)."""

    action: str
    entity_type: str
    entity_id: str
    after: dict[str, Any] = field(default_factory=dict)

    def record(self, session: Session, why: str) -> None:
        record_event(
            session,
            self.action,
            self.entity_type,
            self.entity_id,
            after=self.after,
            reason=f"re-authentication failed: {why}",
        )


def reauthenticate(
    session: Session,
    principal: Principal,
    username: str,
    password: str,
    *,
    act: str,
    actor: str,
    refused: Refused,
) -> User:
    """The caller's user, once ``username`` is theirs and ``password`` matches. ``act`` names
    what is being done ("sign", "unblind"), ``actor`` who does it ("signer");
    ``refused`` is the audit record of a refusal."""
    user = session.scalars(
        select(User)
        .where(User.id == principal.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if username != user.username:
        refused.record(session, f"the username is not the {actor}'s own")
        raise NotTheSigner(
            f"nobody may {act} for someone else: give your own username and password"
        )
    now = clock.utcnow()
    if user.locked_until is not None and user.locked_until > now:
        refused.record(session, "the account is locked")
        raise AccountLocked(
            "too many failed password checks: this account is locked until "
            f"{user.locked_until.isoformat(timespec='seconds')}; you did not {act}"
        )
    if not _password_matches(password, user.password_hash):
        failures = user.failed_login_count + 1
        period = lockout_period(failures)
        with change_reason(session, f"failed re-authentication to {act}: wrong password"):
            user.failed_login_count = failures
            if period is not None:
                user.locked_until = now + period
        refused.record(session, "wrong password")
        raise ReauthenticationFailed(f"the password is wrong; you did not {act}")
    if user.failed_login_count or user.locked_until is not None:
        with change_reason(session, f"re-authenticated to {act}"):
            user.failed_login_count = 0
            user.locked_until = None
    return user


def _password_matches(password: str, stored_hash: str) -> bool:
    try:
        return passwords.password_hash.verify(password, stored_hash)
    except UnknownHashError:  # an account without a usable password (a device)
        return False
