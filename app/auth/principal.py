"""Who is calling: the principal of a request, its role and the sites it works at. Plain data;
the request dependencies that resolve it are in app/auth/deps.py."""

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import user_sites
from app.permissions import ALL_SITES_ROLES, UNBLINDED_ROLES, Role


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    username: str
    display_name: str
    role: Role
    site_ids: frozenset[uuid.UUID]
    token_id: uuid.UUID
    via_cookie: bool = False

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.username}"

    @property
    def all_sites(self) -> bool:
        return self.role in ALL_SITES_ROLES

    @property
    def unblinded(self) -> bool:
        return self.role in UNBLINDED_ROLES

    def sees_site(self, site_id: uuid.UUID) -> bool:
        return self.all_sites or site_id in self.site_ids


def site_ids_of(session: Session, user_id: uuid.UUID) -> set[uuid.UUID]:
    rows = session.scalars(select(user_sites.c.site_id).where(user_sites.c.user_id == user_id))
    return set(rows)
