"""What the clinical records (adverse events, assessments, therapist notes) have in common.

Each is linked to one participant and optionally to one of their visits or dosing sessions, is
never deleted but marked entered in error with a reason, and is refused with every problem found
listed field by field.
"""

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from app.audit.recorder import change_reason
from app.errors import Conflict, InvalidInput
from app.models import AdverseEvent, Assessment, DosingSession, Participant, TherapistNote, Visit
from app.schemas import Reason, WriteModel
from app.time_bounds import Bound, ImplausibleTime, check_within, not_in_future
from app.vocabulary import RecordStatus

ClinicalRecord = AdverseEvent | Assessment | TherapistNote
Problems = list[tuple[str, str]]  # (field, message)


class EnteredInError(WriteModel):
    reason: Reason


def refuse(problems: Problems) -> None:
    """Raise one 422 naming every field at fault (the shape of a request validation error)."""
    if problems:
        raise InvalidInput(
            "; ".join(f"{field}: {message}" for field, message in problems),
            errors=[{"field": field, "message": message} for field, message in problems],
        )


def check_time(
    problems: Problems, field: str, value: datetime | None, earliest: Bound[datetime] | None
) -> None:
    """Add a problem if ``value`` is before ``earliest`` or later than now (plus clock skew)."""
    if value is None:
        return
    try:
        check_within(value, earliest=earliest, latest=not_in_future())
    except ImplausibleTime as exc:
        problems.append((field, str(exc)))


def check_links(
    session: Session,
    participant: Participant,
    *,
    dosing_session_id: uuid.UUID | None = None,
    visit_id: uuid.UUID | None = None,
) -> Problems:
    """Problems with the visit and dosing session a record points at: both must be this
    participant's, and when both are given the dosing session must be the one of that visit."""
    problems: Problems = []
    dosing_session = None
    if dosing_session_id is not None:
        # one message for "missing" and "someone else's": no existence leak across sites
        dosing_session = session.get(DosingSession, dosing_session_id)
        if dosing_session is None or dosing_session.participant_id != participant.id:
            problems.append(
                (
                    "dosing_session_id",
                    f"participant {participant.subject_id} has no dosing session "
                    f"{dosing_session_id}",
                )
            )
            dosing_session = None
    if visit_id is not None:
        visit = session.get(Visit, visit_id)
        if visit is None or visit.participant_id != participant.id:
            problems.append(
                ("visit_id", f"participant {participant.subject_id} has no visit {visit_id}")
            )
        elif dosing_session is not None and dosing_session.visit_id != visit.id:
            problems.append(
                (
                    "visit_id",
                    f"dosing session {dosing_session.id} belongs to another visit than "
                    f"{visit.code}; give the visit of that session or leave visit_id out",
                )
            )
    return problems


def refuse_if_entered_in_error(record: ClinicalRecord, what: str) -> None:
    if record.record_status == RecordStatus.ENTERED_IN_ERROR:
        raise Conflict(
            f"{what} {record.id} was entered in error ({record.error_reason}); it cannot be "
            "changed: record a new one instead"
        )


def mark_entered_in_error(
    session: Session, record: ClinicalRecord, what: str, data: EnteredInError
) -> None:
    """Keep the row, flag it, and let the audit trail say who did it, when and why."""
    if record.record_status == RecordStatus.ENTERED_IN_ERROR:
        raise Conflict(f"{what} {record.id} is already marked entered in error")
    with change_reason(session, data.reason, "entered_in_error"):
        record.record_status = RecordStatus.ENTERED_IN_ERROR.value
        record.error_reason = data.reason
