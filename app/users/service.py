"""Accounts: people and devices, with the sites they work at."""

import uuid
from enum import StrEnum

from pwdlib import PasswordHash
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.models import Site, User, user_sites

password_hash = PasswordHash.recommended()


class Role(StrEnum):
    COORDINATOR = "coordinator"
    THERAPIST = "therapist"
    CLINICIAN = "clinician"
    MEDICAL_MONITOR = "medical_monitor"
    SPONSOR = "sponsor"
    PHARMACIST = "pharmacist"
    DEVICE = "device"
    ADMIN = "admin"


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str,
    site_ids: list[uuid.UUID] = (),  # type: ignore[assignment]
) -> User:
    if len(password) < 12:
        raise InvalidInput("password must have at least 12 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken")
    user = User(
        username=username,
        display_name=display_name,
        role=Role(role).value,
        password_hash=password_hash.hash(password),
    )
    session.add(user)
    session.flush()
    for site_id in site_ids:
        if session.get(Site, site_id) is None:
            raise NotFound(f"site {site_id} does not exist")
        session.execute(insert(user_sites).values(user_id=user.id, site_id=site_id))
    return user


def site_ids_of(session: Session, user_id: uuid.UUID) -> set[uuid.UUID]:
    rows = session.scalars(select(user_sites.c.site_id).where(user_sites.c.user_id == user_id))
    return set(rows)


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user
