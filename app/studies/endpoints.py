import uuid

from fastapi import APIRouter, status
from sqlalchemy import select

from app.db import SessionDep
from app.models import ProtocolVersion
from app.models import Site as SiteRow
from app.models import Study as StudyRow
from app.pagination import Page, PageDep, paginate
from app.protocols import service as protocols
from app.studies import service
from app.studies.schemas import (
    ProtocolVersionDetail,
    ProtocolVersionSummary,
    Site,
    SiteCreate,
    Study,
    StudyCreate,
)

router = APIRouter(tags=["studies"])


@router.get("/protocol-versions", response_model=Page[ProtocolVersionSummary])
def list_protocol_versions(
    session: SessionDep, page: PageDep, protocol_key: str | None = None
) -> dict[str, object]:
    stmt = select(ProtocolVersion)
    if protocol_key:
        stmt = stmt.where(ProtocolVersion.protocol_key == protocol_key)
    items, cursor = paginate(session, stmt, ProtocolVersion.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/protocol-versions/{version_id}", response_model=ProtocolVersionDetail)
def get_protocol_version(session: SessionDep, version_id: uuid.UUID) -> ProtocolVersion:
    return protocols.get_version(session, version_id)


@router.post("/studies", response_model=Study, status_code=status.HTTP_201_CREATED)
def create_study(session: SessionDep, data: StudyCreate) -> StudyRow:
    return service.create_study(session, data)


@router.get("/studies", response_model=Page[Study])
def list_studies(session: SessionDep, page: PageDep) -> dict[str, object]:
    items, cursor = paginate(session, select(StudyRow), StudyRow.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/studies/{study_id}", response_model=Study)
def get_study(session: SessionDep, study_id: uuid.UUID) -> StudyRow:
    return service.get_study(session, study_id)


@router.post("/studies/{study_id}/sites", response_model=Site, status_code=status.HTTP_201_CREATED)
def create_site(session: SessionDep, study_id: uuid.UUID, data: SiteCreate) -> SiteRow:
    return service.create_site(session, service.get_study(session, study_id), data)


@router.get("/studies/{study_id}/sites", response_model=Page[Site])
def list_sites(session: SessionDep, study_id: uuid.UUID, page: PageDep) -> dict[str, object]:
    service.get_study(session, study_id)
    stmt = select(SiteRow).where(SiteRow.study_id == study_id)
    items, cursor = paginate(session, stmt, SiteRow.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/sites/{site_id}", response_model=Site)
def get_site(session: SessionDep, site_id: uuid.UUID) -> SiteRow:
    return service.get_site(session, site_id)
