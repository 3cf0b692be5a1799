"""Studies and their sites."""

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import Site, Study
from app.protocols import service as protocols
from app.studies.schemas import SiteCreate, StudyCreate


def create_study(session: Session, data: StudyCreate) -> Study:
    protocols.latest_version(session, data.protocol_key)  # refuses an unloaded protocol
    if session.scalar(select(Study.id).where(Study.code == data.code)) is not None:
        raise Conflict(f"a study with code {data.code!r} exists")
    study = Study(code=data.code, name=data.name, protocol_key=data.protocol_key)
    session.add(study)
    session.flush()
    return study


def get_study(session: Session, study_id: uuid.UUID) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(f"study {study_id} does not exist")
    return study


def create_site(session: Session, study: Study, data: SiteCreate) -> Site:
    duplicate = select(Site.id).where(Site.study_id == study.id, Site.code == data.code)
    if session.scalar(duplicate) is not None:
        raise Conflict(f"study {study.code} already has a site {data.code!r}")
    site = Site(study_id=study.id, code=data.code, name=data.name, timezone=data.timezone)
    session.add(site)
    session.flush()
    return site
