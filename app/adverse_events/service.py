"""Adverse events: recording, correcting with a reason, and the sponsor reporting clock of SAEs."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app import clock
from app.adverse_events import coding, schemas
from app.adverse_events.schemas import (
    DEFAULT_CTCAE_VERSION,
    AdverseEventCreate,
    AdverseEventUpdate,
    Outcome,
    SeriousnessCriterion,
)
from app.alerts import record_alerts
from app.assessments.records import (
    EnteredInError,
    Problems,
    check_links,
    check_time,
    mark_entered_in_error,
    refuse,
    refuse_if_entered_in_error,
)
from app.audit.recorder import change_reason
from app.errors import InvalidInput, NotFound
from app.models import AdverseEvent, Participant
from app.participants.service import consent_time
from app.protocols import service as protocols
from app.signatures import service as signatures
from app.signatures.schemas import SignatureRead
from app.time_bounds import Bound
from app.vocabulary import RecordStatus

# The investigator-to-sponsor SAE deadline when the protocol sets none (DESIGN.md: sponsor
# convention, 21 CFR 312.64(b) says "immediately").
DEFAULT_SPONSOR_REPORT_HOURS = 24

EDITABLE = (
    "verbatim_term",
    "onset_at",
    "end_at",
    "dosing_session_id",
    "severity",
    "ctcae_grade",
    "ctcae_version",
    "seriousness_criteria",
    "relatedness",
    "expectedness",
    "action_taken",
    "outcome",
    "site_aware_at",
    "sponsor_reported_at",
)

DEATH = SeriousnessCriterion.DEATH.value
FATAL = Outcome.FATAL.value


def _plain(value: Any) -> Any:
    """Enum members as their values, so rows and audit diffs hold plain strings."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _settle(values: dict[str, Any], given: set[str]) -> None:
    """Fill the CTCAE version in: the default with a new grade, nothing without a grade."""
    if values["ctcae_grade"] is None:
        values["ctcae_version"] = None
    elif values["ctcae_version"] is None and "ctcae_version" not in given:
        values["ctcae_version"] = DEFAULT_CTCAE_VERSION


def _problems(values: dict[str, Any], consent: Bound[datetime] | None) -> Problems:
    """Every inconsistency of a complete set of adverse event values, field by field."""
    problems: Problems = []
    onset, end, aware = values["onset_at"], values["end_at"], values["site_aware_at"]
    check_time(problems, "onset_at", onset, consent)
    check_time(problems, "end_at", end, Bound(onset, "onset_at"))
    began = "onset_at: the site cannot have learned of the event before it began"
    check_time(problems, "site_aware_at", aware, Bound(onset, began))
    check_time(
        problems,
        "sponsor_reported_at",
        values["sponsor_reported_at"],
        Bound(aware, "site_aware_at"),
    )

    grade, outcome, criteria = (
        values["ctcae_grade"],
        values["outcome"],
        values["seriousness_criteria"],
    )
    if grade is not None and values["ctcae_version"] is None:
        problems.append(
            (
                "ctcae_version",
                "ctcae_version is required when ctcae_grade is given; a grade "
                "means nothing without its CTCAE version",
            )
        )
    if grade == 5:
        if outcome != FATAL:
            problems.append(
                ("outcome", "CTCAE grade 5 is death related to the event: outcome must be fatal")
            )
        if DEATH not in criteria:
            problems.append(
                (
                    "seriousness_criteria",
                    "CTCAE grade 5 is death related to the event: "
                    "seriousness_criteria must include death",
                )
            )
    elif grade is not None and outcome == FATAL:
        problems.append(
            ("ctcae_grade", f"an event with a fatal outcome is CTCAE grade 5, not {grade}")
        )
    if outcome == FATAL:
        if end is None:
            problems.append(("end_at", "a fatal outcome requires end_at (the time of death)"))
        if DEATH not in criteria and grade != 5:
            problems.append(
                (
                    "seriousness_criteria",
                    "an event with a fatal outcome is serious: "
                    "seriousness_criteria must include death",
                )
            )
    elif DEATH in criteria and grade != 5:
        problems.append(
            (
                "outcome",
                "seriousness criterion death means the event resulted in death: "
                "outcome must be fatal",
            )
        )
    return problems


def _check(session: Session, participant: Participant, values: dict[str, Any]) -> None:
    problems = check_links(session, participant, dosing_session_id=values["dosing_session_id"])
    refuse(problems + _problems(values, consent_time(session, participant)))


def create(session: Session, participant: Participant, data: AdverseEventCreate) -> AdverseEvent:
    values = {field: _plain(getattr(data, field)) for field in EDITABLE}
    if values["site_aware_at"] is None:
        values["site_aware_at"] = clock.utcnow()
    given = data.model_fields_set
    _settle(values, given)
    _check(session, participant, values)
    event = AdverseEvent(participant_id=participant.id, **values)
    session.add(event)
    session.flush()
    record_alerts.raise_for_adverse_event(session, event, clock.utcnow())
    return event


def correct(session: Session, event: AdverseEvent, data: AdverseEventUpdate) -> AdverseEvent:
    refuse_if_entered_in_error(event, "adverse event")
    given = data.model_fields_set - {"reason"}
    changes = {field: _plain(getattr(data, field)) for field in given}
    values = {field: getattr(event, field) for field in EDITABLE} | changes
    _settle(values, given)
    participant = session.get_one(Participant, event.participant_id)
    _check(session, participant, values)
    changed = {f: v for f, v in values.items() if v != getattr(event, f)}
    if not changed:
        raise InvalidInput("the correction changes nothing: every given value is already recorded")
    with change_reason(session, data.reason, "correct"):
        for field, value in changed.items():
            setattr(event, field, value)
    # judged again as corrected: a new match opens an alert, a changed one adds an occurrence;
    # an alert the correction no longer matches stays for a clinician to resolve
    record_alerts.raise_for_adverse_event(session, event, clock.utcnow())
    return event


def enter_in_error(session: Session, event: AdverseEvent, data: EnteredInError) -> AdverseEvent:
    mark_entered_in_error(session, event, "adverse event", data)
    record_alerts.withdraw_for_entered_in_error(session, event, data.reason)
    return event


def get(session: Session, event_id: uuid.UUID) -> AdverseEvent:
    event = session.get(AdverseEvent, event_id)
    if event is None:
        raise NotFound(f"adverse event {event_id} does not exist")
    return event


def listing(
    *,
    participant_id: uuid.UUID | None = None,
    serious: bool | None = None,
    coded: bool | None = None,
    include_entered_in_error: bool = False,
) -> Select[AdverseEvent]:
    stmt = select(AdverseEvent)
    if coded is not None:
        code = AdverseEvent.meddra_pt_code
        stmt = stmt.where(code.is_not(None) if coded else code.is_(None))
    if participant_id is not None:
        stmt = stmt.where(AdverseEvent.participant_id == participant_id)
    if serious is not None:
        count = func.json_array_length(AdverseEvent.seriousness_criteria)
        stmt = stmt.where(count > 0 if serious else count == 0)
    if not include_entered_in_error:
        stmt = stmt.where(AdverseEvent.record_status == RecordStatus.VALID.value)
    return stmt


# --- the read shape -----------------------------------------------------------------------------


def _report_hours(session: Session, protocol_version_id: uuid.UUID) -> int:
    """The protocol's deadline for reporting a serious event to the sponsor, else 24 h."""
    protocol = protocols.definition_of(session, protocol_version_id)
    deadlines = [
        rule.reporting_deadline_hours
        for rule in protocol.rules_of_kind("adverse_event")
        if rule.when.serious and rule.reporting_deadline_hours is not None
    ]
    return min(deadlines, default=DEFAULT_SPONSOR_REPORT_HOURS)


def present_all(session: Session, events: Sequence[AdverseEvent]) -> list[schemas.AdverseEventRead]:
    """The read shapes, with the derived fields; the reporting clock runs on app.clock."""
    participant_ids = {event.participant_id for event in events}
    rows = session.execute(
        select(Participant.id, Participant.protocol_version_id).where(
            Participant.id.in_(participant_ids)
        )
    )
    versions = {participant_id: version_id for participant_id, version_id in rows}
    hours = {version: _report_hours(session, version) for version in set(versions.values())}
    now = clock.utcnow()
    signed = signatures.signatures_of(session, events)
    return [
        _present(event, hours[versions[event.participant_id]], now, signed.get(event.id, []))
        for event in events
    ]


def present(session: Session, event: AdverseEvent) -> schemas.AdverseEventRead:
    return present_all(session, [event])[0]


def _present(
    event: AdverseEvent, report_hours: int, now: datetime, signed: list[SignatureRead]
) -> schemas.AdverseEventRead:
    due_at: datetime | None = None
    overdue: bool | None = None
    if event.serious and event.record_status == RecordStatus.VALID:
        due_at = event.site_aware_at + timedelta(hours=report_hours)
        overdue = event.sponsor_reported_at is None and now > due_at
    values = {field: getattr(event, field) for field in EDITABLE}
    return schemas.AdverseEventRead(
        id=event.id,
        participant_id=event.participant_id,
        ongoing=event.end_at is None,
        serious=event.serious,
        sponsor_report_due_at=due_at,
        sponsor_report_overdue=overdue,
        record_status=RecordStatus(event.record_status),
        error_reason=event.error_reason,
        created_at=event.created_at,
        updated_at=event.updated_at,
        signatures=signed,
        coding=coding.coding_of(event),
        **values,
    )
