"""Moving a participant to an amendment: a newer version of the protocol they are under.

Their dosing sessions created afterwards run under it (app/dosing/service.py takes the
participant's version); the sessions they already have keep theirs. The visit schedule follows
the amendment where nothing was recorded yet: a visit still scheduled is laid out again from
the enrolment date as the new version defines it (target, window, name, place; its scheduled
day moves with the target unless it had been rescheduled), a visit the new version adds is
scheduled, and a visit completed or missed is kept as it was recorded. A scheduled visit the
new version no longer has stays, under the version it came from, for the coordinator to record
(docs/protocol-format.md, "Amendments").
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.recorder import change_reason
from app.errors import Conflict, InvalidInput, NotFound
from app.models import DosingSession, Participant, ProtocolVersion, Visit
from app.models.dosing import DosingSessionStatus
from app.participants import service
from app.participants.schemas import Amendment, ParticipantStatus
from app.protocols import service as protocols
from app.time_bounds import Bound

# A participant whose part in the trial has ended (or never began) is not moved.
FINAL = frozenset(
    {ParticipantStatus.COMPLETED, ParticipantStatus.WITHDRAWN, ParticipantStatus.SCREEN_FAILED}
)


def _field(message: str) -> InvalidInput:
    return InvalidInput(
        f"protocol_version_id: {message}",
        errors=[{"field": "protocol_version_id", "message": message}],
    )


def _target(session: Session, participant: Participant, data: Amendment) -> ProtocolVersion:
    current = protocols.get_version(session, participant.protocol_version_id)
    try:
        target = protocols.get_version(session, data.protocol_version_id)
    except NotFound:
        raise _field(f"protocol version {data.protocol_version_id} does not exist") from None
    if target.protocol_key != current.protocol_key:
        raise _field(
            f"version {target.version_label} is of protocol {target.protocol_key}; participant "
            f"{participant.subject_id} is under protocol {current.protocol_key}: an amendment "
            "is a newer version of the same protocol"
        )
    if target.sequence <= current.sequence:
        which = "the version" if target.id == current.id else "older than the version"
        raise _field(
            f"version {target.version_label} is {which} participant {participant.subject_id} "
            f"is under ({current.version_label}); an amendment is a newer version"
        )
    return target


def _check_movable(session: Session, participant: Participant) -> None:
    status = ParticipantStatus(participant.status)
    if status in FINAL:
        raise Conflict(
            f"participant {participant.subject_id} is {status.value}; only a participant "
            "still in the trial is moved to an amendment"
        )
    running = session.scalar(
        select(DosingSession.id).where(
            DosingSession.participant_id == participant.id,
            DosingSession.status == DosingSessionStatus.IN_PROGRESS.value,
        )
    )
    if running is not None:
        raise Conflict(
            f"participant {participant.subject_id} has dosing session {running} in progress; "
            "move them to the amendment once it has ended"
        )


def amend(session: Session, participant: Participant, data: Amendment) -> Participant:
    """Move the participant to the newer version ``data`` names, with its re-consent date."""
    _check_movable(session, participant)
    target = _target(session, participant, data)
    since = participant.enrolled_on or participant.consented_on
    earliest = None
    if since is not None:
        what = "enrolment date" if participant.enrolled_on else "consent date"
        earliest = Bound(since, f"the participant's {what}")
    service._check_date(
        "reconsented_on",
        data.reconsented_on,
        earliest,
        service._today_at_site(session, participant),
    )
    reason = f"amendment to version {target.version_label}: {data.reason}"
    with change_reason(session, reason, "amend"):
        participant.protocol_version_id = target.id
        participant.reconsented_on = data.reconsented_on
        if participant.enrolled_on is not None:
            _follow_schedule(session, participant, target)
    return participant


def _follow_schedule(session: Session, participant: Participant, target: ProtocolVersion) -> None:
    assert participant.enrolled_on is not None
    existing = {visit.code: visit for visit in service.visits_of(session, participant)}
    for sequence, definition in enumerate(protocols.definition(target).visits, start=1):
        visit = existing.get(definition.code)
        if visit is None:
            visit = Visit(participant_id=participant.id)
            service.plan_visit(visit, target.id, definition, sequence, participant.enrolled_on)
            visit.scheduled_on = visit.target_on
            session.add(visit)
        elif visit.status == "scheduled":
            rescheduled = visit.reschedule_reason is not None
            service.plan_visit(visit, target.id, definition, sequence, participant.enrolled_on)
            if not rescheduled:
                visit.scheduled_on = visit.target_on
