"""Who is looking at a page, as its header shows them: the signed-in principal with the codes
and names of their sites (or 'all sites' for the study-wide roles)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy import select

from app.auth.deps import CurrentPrincipal
from app.auth.principal import Principal
from app.db import SessionDep
from app.models import Site
from app.permissions import Permission, allows


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    sites: list[Site]

    @property
    def site_label(self) -> str:
        if self.principal.all_sites:
            return "all sites"
        return ", ".join(site.code for site in self.sites) or "no site"

    def may(self, permission: str) -> bool:
        return allows(self.principal.role, Permission(permission))


def viewer(session: SessionDep, principal: CurrentPrincipal) -> Viewer:
    stmt = select(Site).order_by(Site.code)
    if not principal.all_sites:
        stmt = stmt.where(Site.id.in_(principal.site_ids))
    return Viewer(principal, list(session.scalars(stmt)))


CurrentViewer = Annotated[Viewer, Depends(viewer)]
