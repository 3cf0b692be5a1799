"""A study's FHIR resources of one type, read from the database in batches and yielded one at a
time (``yield_per``): memory stays flat however large the study is."""

from collections.abc import Callable, Iterator
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.exports.fhir import resources
from app.exports.fhir.resources import Resource
from app.models import AdverseEvent, DosingSession, Participant, Study, VitalReading
from app.vocabulary import RecordStatus

BATCH_ROWS = 1000


class ResourceType(StrEnum):
    RESEARCH_STUDY = "ResearchStudy"
    RESEARCH_SUBJECT = "ResearchSubject"
    PATIENT = "Patient"
    OBSERVATION = "Observation"
    ADVERSE_EVENT = "AdverseEvent"


def _participants(session: Session, study: Study, principal: Principal) -> Iterator[Participant]:
    query = (
        select(Participant)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    if not principal.all_sites:
        query = query.where(Participant.site_id.in_(principal.site_ids))
    yield from session.scalars(query)


def _research_study(session: Session, study: Study, _principal: Principal) -> Iterator[Resource]:
    yield resources.research_study(study)


def _patients(session: Session, study: Study, principal: Principal) -> Iterator[Resource]:
    for participant in _participants(session, study, principal):
        yield resources.patient(participant)


def _research_subjects(session: Session, study: Study, principal: Principal) -> Iterator[Resource]:
    shown = shows_arms(ResourceType.RESEARCH_SUBJECT, principal)
    for participant in _participants(session, study, principal):
        yield resources.research_subject(participant, arm=participant.arm_code if shown else None)


def _observations(session: Session, study: Study, principal: Principal) -> Iterator[Resource]:
    columns = [getattr(VitalReading, name) for name in resources.READING_COLUMNS]
    query = (
        select(DosingSession.participant_id, *columns)
        .join(DosingSession, DosingSession.id == VitalReading.dosing_session_id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id, VitalReading.measured_at, VitalReading.id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    if not principal.all_sites:
        query = query.where(Participant.site_id.in_(principal.site_ids))
    for reading in session.execute(query):
        yield from resources.observations(reading, reading.participant_id)


def _adverse_events(session: Session, study: Study, principal: Principal) -> Iterator[Resource]:
    query = (
        select(AdverseEvent)
        .join(Participant, Participant.id == AdverseEvent.participant_id)
        .where(
            Participant.study_id == study.id,
            AdverseEvent.record_status == RecordStatus.VALID.value,
        )
        .order_by(Participant.subject_id, AdverseEvent.onset_at, AdverseEvent.id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    if not principal.all_sites:
        query = query.where(Participant.site_id.in_(principal.site_ids))
    for event in session.scalars(query):
        yield resources.adverse_event(event, study.id)


_BUILDERS: dict[ResourceType, Callable[[Session, Study, Principal], Iterator[Resource]]] = {
    ResourceType.RESEARCH_STUDY: _research_study,
    ResourceType.RESEARCH_SUBJECT: _research_subjects,
    ResourceType.PATIENT: _patients,
    ResourceType.OBSERVATION: _observations,
    ResourceType.ADVERSE_EVENT: _adverse_events,
}


def study_resources(
    session: Session, study: Study, resource_type: ResourceType, principal: Principal
) -> Iterator[Resource]:
    """Every resource of ``resource_type`` of ``study`` that ``principal`` may see."""
    return _BUILDERS[resource_type](session, study, principal)


def shows_arms(resource_type: ResourceType, principal: Principal) -> bool:
    """Whether the export shows ``principal`` the participants' arms: only ResearchSubject, and
    only to an unblinded role (the clinician who unblinded a participant in an emergency sees
    that arm in the participant's read shape only, docs/blinding.md)."""
    return resource_type is ResourceType.RESEARCH_SUBJECT and principal.unblinded


def study_by_code(session: Session, code: str) -> Study | None:
    return session.scalars(select(Study).where(Study.code == code)).one_or_none()
