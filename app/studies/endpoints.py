import uuid

from fastapi import APIRouter, Depends, status
from sqlalchemy import select

from app.auth.deps import Authorize, CurrentPrincipal, ScopedSite, ScopedStudy
from app.auth.scope import only_visible_sites, only_visible_studies
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import ProtocolVersion
from app.models import Site as SiteRow
from app.models import Study as StudyRow
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission
from app.protocols import service as protocols
from app.studies import service
from app.studies.schemas import (
    ProtocolVersionDetailRead,
    ProtocolVersionSummaryRead,
    SiteCreate,
    SiteRead,
    StudyCreate,
    StudyRead,
)

router = APIRouter(tags=["studies"], route_class=CheckedRoute)


@router.get(
    "/protocol-versions",
    response_model=Page[ProtocolVersionSummaryRead],
    dependencies=[Depends(Authorize(Permission.STUDY_READ))],
)
def list_protocol_versions(
    session: SessionDep, page: PageDep, protocol_key: str | None = None
) -> dict[str, object]:
    stmt = select(ProtocolVersion)
    if protocol_key:
        stmt = stmt.where(ProtocolVersion.protocol_key == protocol_key)
    items, cursor = paginate(session, stmt, ProtocolVersion.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/protocol-versions/{version_id}",
    response_model=ProtocolVersionDetailRead,
    dependencies=[Depends(Authorize(Permission.STUDY_READ))],
)
def get_protocol_version(session: SessionDep, version_id: uuid.UUID) -> ProtocolVersion:
    """A protocol version is the same for every site: not site-scoped."""
    return protocols.get_version(session, version_id)


@router.post(
    "/studies",
    response_model=StudyRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.STUDY_MANAGE))],
)
def create_study(session: SessionDep, data: StudyCreate) -> StudyRow:
    return service.create_study(session, data)


@router.get(
    "/studies",
    response_model=Page[StudyRead],
    dependencies=[Depends(Authorize(Permission.STUDY_READ))],
)
def list_studies(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep
) -> dict[str, object]:
    """The studies the caller works in (every study for the roles that see every site)."""
    stmt = only_visible_studies(select(StudyRow), principal, StudyRow.id)
    items, cursor = paginate(session, stmt, StudyRow.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/studies/{study_id}",
    response_model=StudyRead,
    dependencies=[Depends(Authorize(Permission.STUDY_READ))],
)
def get_study(study: ScopedStudy) -> StudyRow:
    return study


@router.post(
    "/studies/{study_id}/sites",
    response_model=SiteRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.STUDY_MANAGE))],
)
def create_site(session: SessionDep, study: ScopedStudy, data: SiteCreate) -> SiteRow:
    return service.create_site(session, study, data)


@router.get(
    "/studies/{study_id}/sites",
    response_model=Page[SiteRead],
    dependencies=[Depends(Authorize(Permission.STUDY_READ))],
)
def list_sites(
    session: SessionDep, principal: CurrentPrincipal, study: ScopedStudy, page: PageDep
) -> dict[str, object]:
    """The study's sites the caller works at (all of them for the study-wide roles)."""
    stmt = only_visible_sites(
        select(SiteRow).where(SiteRow.study_id == study.id), principal, SiteRow.id
    )
    items, cursor = paginate(session, stmt, SiteRow.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/sites/{site_id}",
    response_model=SiteRead,
    dependencies=[Depends(Authorize(Permission.STUDY_READ))],
)
def get_site(site: ScopedSite) -> SiteRow:
    return site
