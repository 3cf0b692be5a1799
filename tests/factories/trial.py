"""Small builders for a study, its sites and participants at a given stage."""

from datetime import date
from functools import cache
from pathlib import Path

from sqlalchemy.orm import Session

from app.config import ROOT
from app.models import Participant, ProtocolVersion, Site, Study
from app.participants import service as participants
from app.participants.schemas import Enrolment, ParticipantCreate
from app.protocols import service as protocols
from app.protocols.loader import LoadedProtocol, load_protocol_file
from app.studies import service as studies
from app.studies.schemas import SiteCreate, StudyCreate

MDMA = ROOT / "protocols" / "mdma-ptsd-phase3.yaml"
PSILOCYBIN = ROOT / "protocols" / "psilocybin-single-session.yaml"


@cache
def _parsed(path: Path) -> LoadedProtocol:
    return load_protocol_file(path)


def load_protocol(db: Session, path: Path = MDMA) -> ProtocolVersion:
    version, _ = protocols.store(db, _parsed(path))
    return version


def make_study(db: Session, path: Path = MDMA, code: str = "MAPP-T") -> Study:
    version = load_protocol(db, path)
    return studies.create_study(
        db, StudyCreate(code=code, name="Test study", protocol_key=version.protocol_key)
    )


def make_site(db: Session, study: Study, code: str = "S01") -> Site:
    return studies.create_site(db, study, SiteCreate(code=code, name=f"Site {code}"))


def make_participant(
    db: Session,
    site: Site,
    subject_id: str = "01-001",
    *,
    stage: str = "screening",
    enrolled_on: date = date(2026, 1, 5),
) -> Participant:
    study = studies.get_study(db, site.study_id)
    participant = participants.create(
        db,
        study,
        ParticipantCreate(
            site_id=site.id,
            subject_id=subject_id,
            sex="F",
            age_years=41,
            consented_on=date(2026, 1, 2),
        ),
    )
    if stage in {"enrolled", "randomised"}:
        participants.enrol(db, participant, Enrolment(enrolled_on=enrolled_on))
    if stage == "randomised":
        participants.randomise(db, participant)
    return participant
