"""Accounts: people and devices, with the sites they work at."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app import permissions
from app.audit.recorder import change_reason, record_event
from app.auth import passwords, tokens
from app.auth import service as credentials
from app.auth.passwords import MIN_PASSWORD_LENGTH, UNUSABLE_PASSWORD
from app.auth.principal import site_ids_of
from app.clock import utcnow
from app.config import get_settings
from app.errors import Conflict, InvalidInput, NotFound
from app.models import AccessToken, DeviceClock, Site, User, user_sites
from app.permissions import Role
from app.wording import with_article


def check_sites(role: Role, site_ids: Sequence[uuid.UUID]) -> None:
    """The sites a role may be given (DESIGN.md section 2): a device works at exactly one site,
    site staff at one or more, the study-wide roles at none (they already see every site)."""
    count = len(set(site_ids))
    if role is Role.DEVICE and count != 1:
        raise InvalidInput("a device works at exactly one site; give one site id")
    if role in permissions.ALL_SITES_ROLES and count:
        raise InvalidInput(f"{with_article(role.value)} sees every site; give no site ids")
    if role is not Role.DEVICE and role not in permissions.ALL_SITES_ROLES and not count:
        raise InvalidInput(
            f"{with_article(role.value)} works at one or more sites; give their site ids"
        )


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str,
    site_ids: Sequence[uuid.UUID] = (),
) -> User:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _create_account(
        session,
        username=username,
        display_name=display_name,
        role=Role(role),
        password=password,
        site_ids=site_ids,
    )


def _create_account(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str | None,
    site_ids: Sequence[uuid.UUID],
) -> User:
    """Checked first, hashed last: a refused account costs no password hashing."""
    check_sites(role, site_ids)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken")
    _require_sites(session, site_ids)
    user = User(
        username=username,
        display_name=display_name,
        role=role.value,
        password_hash=UNUSABLE_PASSWORD
        if password is None
        else passwords.password_hash.hash(password),
    )
    session.add(user)
    session.flush()
    _change_sites(session, user, set(), set(site_ids), reason="account created")
    return user


def _require_sites(session: Session, site_ids: Iterable[uuid.UUID]) -> None:
    for site_id in site_ids:
        if session.get(Site, site_id) is None:
            raise NotFound(f"site {site_id} does not exist")


def _change_sites(
    session: Session, user: User, before: set[uuid.UUID], after: set[uuid.UUID], reason: str
) -> None:
    """user_sites is a plain association table, so its changes are audited explicitly."""
    added, removed = after - before, before - after
    if not added and not removed:
        return
    if removed:
        session.execute(
            delete(user_sites).where(
                user_sites.c.user_id == user.id, user_sites.c.site_id.in_(removed)
            )
        )
    for site_id in sorted(added):
        session.execute(insert(user_sites).values(user_id=user.id, site_id=site_id))
    record_event(
        session,
        "site_membership",
        "users",
        str(user.id),
        after={
            "site_ids": sorted(str(s) for s in after),
            "added": sorted(str(s) for s in added),
            "removed": sorted(str(s) for s in removed),
        },
        reason=reason,
    )


def site_ids_by_user(
    session: Session, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    ids = list(user_ids)
    found: dict[uuid.UUID, set[uuid.UUID]] = {user_id: set() for user_id in ids}
    if ids:
        rows = session.execute(select(user_sites).where(user_sites.c.user_id.in_(ids)))
        for user_id, site_id in rows:
            found[user_id].add(site_id)
    return found


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def set_sites(session: Session, user: User, site_ids: Sequence[uuid.UUID], reason: str) -> None:
    """Replace the sites a user works at."""
    check_sites(Role(user.role), site_ids)
    _require_sites(session, site_ids)
    _change_sites(session, user, site_ids_of(session, user.id), set(site_ids), reason=reason)


def deactivate(session: Session, user: User, reason: str, *, by_user_id: uuid.UUID | None) -> int:
    """Switch an account off and revoke its live tokens; returns how many were revoked.
    Accounts are never deleted: their records and signatures keep pointing at them."""
    if user.id == by_user_id:
        raise Conflict("you cannot deactivate your own account; ask another admin")
    if not user.active:
        raise Conflict(f"user {user.username} is already deactivated")
    with change_reason(session, reason, "deactivate"):
        user.active = False
    return credentials.revoke_all(session, user.id, f"account deactivated: {reason}")


def unlock(session: Session, user: User, reason: str) -> None:
    """Lift a sign-in lockout and forget the failed attempts that led to it."""
    if user.failed_login_count == 0 and user.locked_until is None:
        raise Conflict(f"user {user.username} has no failed sign-ins to clear")
    with change_reason(session, reason, "unlock"):
        user.failed_login_count = 0
        user.locked_until = None


# --- devices ------------------------------------------------------------------------------------


def create_device(session: Session, name: str, site_id: uuid.UUID) -> tuple[User, str]:
    """A bedside tablet: an account of role device at one site, with no password, and its
    first token (returned once; only its hash is stored)."""
    device = _create_account(
        session,
        username=name,
        display_name=name,
        role=Role.DEVICE,
        password=None,
        site_ids=[site_id],
    )
    _, plaintext = tokens.issue(session, device, tokens.TokenKind.DEVICE, label=name)
    return device, plaintext


def get_device(session: Session, device_id: uuid.UUID) -> User:
    device = session.get(User, device_id)
    if device is None or device.role != Role.DEVICE:
        raise NotFound(f"device {device_id} does not exist")
    return device


def rotate_device_token(
    session: Session, device: User, reason: str, overlap_minutes: int | None = None
) -> tuple[AccessToken, str]:
    """A new token for the device. Its previous tokens keep working for the overlap
    (VIGIL_DEVICE_TOKEN_OVERLAP_MINUTES unless ``overlap_minutes`` is given), so a tablet can
    pick up its new token without losing a reading, and then expire; an overlap of 0 revokes
    them now. Either way each old token's change is audited with the reason."""
    if not device.active:
        raise Conflict(f"device {device.username} is deactivated")
    minutes = (
        get_settings().device_token_overlap_minutes if overlap_minutes is None else overlap_minutes
    )
    why = f"device token rotated: {reason}"
    if minutes == 0:
        credentials.revoke_all(session, device.id, why)
    else:
        now = utcnow()
        until = now + timedelta(minutes=minutes)
        live = session.scalars(
            credentials.tokens_of(device.id, live_only=True).order_by(AccessToken.id)
        ).all()
        with change_reason(session, f"{why} (works until {until.isoformat()})", "rotate"):
            for token in live:
                token.expires_at = min(token.expires_at or until, until)
    return tokens.issue(session, device, tokens.TokenKind.DEVICE, label=device.username)


def device_tokens(
    session: Session, device_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[AccessToken]]:
    ids = list(device_ids)
    found: dict[uuid.UUID, list[AccessToken]] = {device_id: [] for device_id in ids}
    if ids:
        rows = session.scalars(
            select(AccessToken).where(AccessToken.user_id.in_(ids)).order_by(AccessToken.id)
        )
        for token in rows:
            found[token.user_id].append(token)
    return found


def last_seen(token_rows: Iterable[AccessToken]) -> tuple[datetime | None, str | None]:
    """When and from where any of these tokens was last used."""
    seen = [(t.last_seen_at, t.last_seen_address) for t in token_rows if t.last_seen_at]
    return max(seen, key=lambda when_where: when_where[0]) if seen else (None, None)


def live_tokens(token_rows: Iterable[AccessToken], now: datetime) -> list[AccessToken]:
    """The tokens that still work: not revoked, not past their expiry (a rotation's overlap)
    and not expired unused."""
    return [
        t
        for t in token_rows
        if t.revoked_at is None
        and (t.expires_at is None or t.expires_at > now)
        and not tokens.idle_expired(t, now)
    ]


def clocks_of(session: Session, device_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DeviceClock]:
    ids = list(device_ids)
    if not ids:
        return {}
    rows = session.scalars(select(DeviceClock).where(DeviceClock.device_id.in_(ids)))
    return {row.device_id: row for row in rows}
