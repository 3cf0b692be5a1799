"""Participants: the status lifecycle, enrolment with its visit schedule, randomisation."""

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.recorder import change_reason
from app.clock import utcnow
from app.config import get_settings
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Participant, Site, Study, Visit
from app.participants import randomisation
from app.participants.schemas import (
    Enrolment,
    ParticipantCreate,
    ParticipantStatus,
    ScreenFailure,
    VisitOutcome,
    VisitReschedule,
    Withdrawal,
)
from app.protocols import service as protocols
from app.protocols.study_schema import VisitDefinition
from app.time_bounds import Bound, ImplausibleTime, check_within, start_of_day, today_at

S = ParticipantStatus
TRANSITIONS: dict[S, set[S]] = {
    S.SCREENING: {S.ENROLLED, S.SCREEN_FAILED},
    S.ENROLLED: {S.RANDOMISED, S.WITHDRAWN},
    S.RANDOMISED: {S.IN_TREATMENT, S.WITHDRAWN},
    S.IN_TREATMENT: {S.COMPLETED, S.WITHDRAWN},
    S.COMPLETED: set(),
    S.WITHDRAWN: set(),
    S.SCREEN_FAILED: set(),
}


def create(session: Session, study: Study, data: ParticipantCreate) -> Participant:
    site = session.get(Site, data.site_id)
    if site is None or site.study_id != study.id:
        raise InvalidInput(f"site {data.site_id} is not a site of study {study.code}")
    taken = select(Participant.id).where(
        Participant.study_id == study.id, Participant.subject_id == data.subject_id
    )
    if session.scalar(taken) is not None:
        raise Conflict(f"subject id {data.subject_id} is already used in study {study.code}")
    today = today_at(site.timezone)
    max_age = get_settings().consent_max_age_days
    oldest = Bound(
        today.at - timedelta(days=max_age),
        f"the oldest consent date allowed, {max_age} days before today "
        "(VIGIL_CONSENT_MAX_AGE_DAYS)",
    )
    _check_date("consented_on", data.consented_on, oldest, today)
    version = protocols.latest_version(session, study.protocol_key)
    participant = Participant(
        study_id=study.id,
        site_id=site.id,
        subject_id=data.subject_id,
        sex=data.sex,
        age_years=data.age_years,
        consented_on=data.consented_on,
        protocol_version_id=version.id,
        status=S.SCREENING.value,
    )
    session.add(participant)
    session.flush()
    return participant


def _check_date(
    field: str, value: date, earliest: Bound[date] | None, latest: Bound[date] | None = None
) -> None:
    """Refuse a clinical date outside [earliest, latest] with a 422 naming the field."""
    try:
        check_within(value, earliest=earliest, latest=latest)
    except ImplausibleTime as exc:
        raise InvalidInput(
            f"{field}: {exc}", errors=[{"field": field, "message": str(exc)}]
        ) from None


def _today_at_site(session: Session, participant: Participant) -> Bound[date]:
    return today_at(session.get_one(Site, participant.site_id).timezone)


def consent_date(participant: Participant) -> Bound[date] | None:
    """The day the participant consented: nothing is recorded of them before it."""
    if participant.consented_on is None:
        return None
    return Bound(participant.consented_on, "the participant's consent date")


def consent_time(session: Session, participant: Participant) -> Bound[datetime] | None:
    """When the participant's consent day began at their site: the earliest clinical time."""
    if participant.consented_on is None:
        return None
    timezone = session.get_one(Site, participant.site_id).timezone
    return Bound(
        start_of_day(participant.consented_on, timezone),
        f"the participant's consent date {participant.consented_on} (site time {timezone})",
    )


def get(session: Session, participant_id: uuid.UUID) -> Participant:
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist")
    return participant


def _move(participant: Participant, target: S) -> None:
    current = S(participant.status)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final status)"
        raise Conflict(
            f"participant {participant.subject_id} is {current.value}; cannot become "
            f"{target.value} (allowed next: {allowed})"
        )
    participant.status = target.value


def enrol(session: Session, participant: Participant, data: Enrolment) -> list[Visit]:
    """Enrol and lay out the visit schedule of the protocol version in force."""
    _check_date(
        "enrolled_on",
        data.enrolled_on,
        consent_date(participant),
        _today_at_site(session, participant),
    )
    _move(participant, S.ENROLLED)
    participant.enrolled_on = data.enrolled_on
    version = protocols.latest_version(
        session, protocols.get_version(session, participant.protocol_version_id).protocol_key
    )
    participant.protocol_version_id = version.id
    protocol = protocols.definition(version)
    visits = []
    for sequence, definition in enumerate(protocol.visits, start=1):
        visit = Visit(participant_id=participant.id)
        plan_visit(visit, version.id, definition, sequence, data.enrolled_on)
        visit.scheduled_on = visit.target_on
        visits.append(visit)
    session.add_all(visits)
    session.flush()
    return visits


def plan_visit(
    visit: Visit,
    version_id: uuid.UUID,
    definition: VisitDefinition,
    sequence: int,
    enrolled_on: date,
) -> None:
    """Lay ``visit`` out as the protocol version's ``definition`` says, counted from enrolment:
    its name, kind, place in the schedule, target day and window (not its scheduled day)."""
    target = enrolled_on + timedelta(days=definition.day)
    visit.protocol_version_id = version_id
    visit.code, visit.name, visit.kind = definition.code, definition.name, definition.kind
    visit.sequence = sequence
    visit.target_on = target
    visit.window_start_on = target - timedelta(days=definition.window.before)
    visit.window_end_on = target + timedelta(days=definition.window.after)


def randomise(session: Session, participant: Participant) -> Participant:
    _move(participant, S.RANDOMISED)
    # Lock the stratum (the site row) so two concurrent randomisations cannot take one slot.
    session.scalar(select(Site).where(Site.id == participant.site_id).with_for_update())
    already = session.scalar(
        select(func.count()).where(
            Participant.study_id == participant.study_id,
            Participant.site_id == participant.site_id,
            Participant.arm_code.is_not(None),
        )
    )
    protocol = protocols.definition_of(session, participant.protocol_version_id)
    stratum = f"{participant.study_id}:{participant.site_id}"
    participant.arm_code = randomisation.allocate(
        protocol, get_settings().secret_key, stratum, already or 0
    )
    participant.randomised_at = utcnow()
    session.flush()
    return participant


def start_treatment(session: Session, participant: Participant) -> None:
    """Called when the first dosing session starts."""
    if participant.status == S.RANDOMISED.value:
        with change_reason(session, "first dosing session started"):
            _move(participant, S.IN_TREATMENT)


def complete(session: Session, participant: Participant) -> Participant:
    _move(participant, S.COMPLETED)
    session.flush()
    return participant


def withdraw(session: Session, participant: Participant, data: Withdrawal) -> Participant:
    with change_reason(session, data.reason_text or data.reason_code.value, "withdraw"):
        _move(participant, S.WITHDRAWN)
        participant.status_reason_code = data.reason_code.value
        participant.status_reason_text = data.reason_text
    return participant


def screen_fail(session: Session, participant: Participant, data: ScreenFailure) -> Participant:
    with change_reason(session, data.reason_text or data.reason_code.value, "screen_fail"):
        _move(participant, S.SCREEN_FAILED)
        participant.status_reason_code = data.reason_code.value
        participant.status_reason_text = data.reason_text
    return participant


def get_visit(session: Session, visit_id: uuid.UUID) -> Visit:
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"visit {visit_id} does not exist")
    return visit


def visits_of(session: Session, participant: Participant) -> list[Visit]:
    stmt = select(Visit).where(Visit.participant_id == participant.id).order_by(Visit.sequence)
    return list(session.scalars(stmt))


def reschedule(session: Session, visit: Visit, data: VisitReschedule) -> Visit:
    if visit.status != "scheduled":
        raise Conflict(f"visit {visit.code} is {visit.status}; only a scheduled visit moves")
    participant = session.get_one(Participant, visit.participant_id)
    _check_date("scheduled_on", data.scheduled_on, consent_date(participant))
    with change_reason(session, data.reason, "reschedule"):
        visit.scheduled_on = data.scheduled_on
        visit.reschedule_reason = data.reason
    return visit


def record_outcome(session: Session, visit: Visit, data: VisitOutcome) -> Visit:
    if visit.status != "scheduled":
        raise Conflict(f"visit {visit.code} is already {visit.status}")
    if data.occurred_on is not None:
        participant = session.get_one(Participant, visit.participant_id)
        _check_date(
            "occurred_on",
            data.occurred_on,
            consent_date(participant),
            _today_at_site(session, participant),
        )
    with change_reason(session, data.reason or f"visit {data.status}", data.status):
        visit.status = data.status
        visit.occurred_on = data.occurred_on
        visit.status_reason = data.reason
    return visit


def complete_by_session(session: Session, visit: Visit, occurred_on: date, reason: str) -> Visit:
    """A visit held as a dosing session that has ended: completed on the session's date. A visit
    already given an outcome keeps it."""
    if visit.status != "scheduled":
        return visit
    with change_reason(session, reason, "completed"):
        visit.status = "completed"
        visit.occurred_on = occurred_on
    return visit
