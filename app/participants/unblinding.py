"""Emergency unblinding: a clinician of the participant's site learns the participant's arm in a
medical emergency (DESIGN.md section 2; docs/blinding.md).

The clinician gives their username and password again (app/auth/reauthentication.py: a wrong
password counts toward the lockout), a coded reason and a justification. The participant is
marked unblinded (when, by whom, why: every reader sees it, never the arm); from then on that
clinician, and only they, sees the arm of that participant. A critical ``unblinding`` alert,
escalated at once to the medical monitor (and read study-wide by the sponsor), says that it
happened, by whom and why: never the arm. Nothing else about blinding changes.
"""

from sqlalchemy.orm import Session

from app import clock
from app.alerts import service as alerts
from app.alerts.schemas import AlertSeverity
from app.audit.recorder import change_reason
from app.auth import reauthentication
from app.auth.principal import Principal
from app.errors import Conflict
from app.models import Alert, Participant, User
from app.participants.schemas import EmergencyUnblinding

RULE_ID = "emergency_unblinding"
KIND = "unblinding"
REFUSED = "unblinding_refused"  # the audit action of an unblinding refused for its credentials


def unblind(
    session: Session, principal: Principal, participant: Participant, data: EmergencyUnblinding
) -> bool:
    """Unblind ``participant`` for the calling clinician; False when they had unblinded them
    already (nothing changes: they see the arm again). Raises ReauthenticationFailed after
    auditing the attempt: answer it, do not let it roll the transaction back."""
    participant = _locked(session, participant)
    if participant.arm_code is None:
        raise Conflict(
            f"participant {participant.subject_id} is {participant.status}, not randomised: "
            "there is no arm to unblind"
        )
    if participant.unblinded_by_id not in (None, principal.user_id):
        unblinder = session.get_one(User, participant.unblinded_by_id)
        raise Conflict(
            f"participant {participant.subject_id} was unblinded at "
            f"{participant.unblinded_at:%Y-%m-%d %H:%M} UTC by {unblinder.display_name}, "
            "who sees the arm; ask them: a participant is unblinded once"
        )
    user = reauthentication.reauthenticate(
        session,
        principal,
        data.username,
        data.password.get_secret_value(),
        act="unblind",
        actor="unblinding clinician",
        refused=reauthentication.Refused(
            REFUSED, "participants", str(participant.id), {"reason_code": data.reason_code.value}
        ),
    )
    if participant.unblinded_by_id is not None:
        return False
    now = clock.utcnow()
    reason = f"emergency unblinding ({data.reason_code.value}): {data.justification}"
    with change_reason(session, reason, "unblind"):
        participant.unblinded_at = now
        participant.unblinded_by_id = user.id
        participant.unblinding_reason_code = data.reason_code.value
        participant.unblinding_justification = data.justification
    _alert(session, participant, user)
    return True


def _locked(session: Session, participant: Participant) -> Participant:
    """The participant as it is now, locked: two clinicians cannot both unblind it."""
    return session.get_one(
        Participant, participant.id, with_for_update=True, populate_existing=True
    )


def _alert(session: Session, participant: Participant, user: User) -> Alert:
    assert participant.unblinded_at is not None
    at = participant.unblinded_at
    message = (
        f"Participant {participant.subject_id} was unblinded in an emergency by "
        f"{user.display_name} ({user.username}) at {at:%Y-%m-%d %H:%M} UTC. Reason: "
        f"{participant.unblinding_reason_code}. Justification: "
        f"{participant.unblinding_justification}. The arm is shown to that clinician only."
    )
    finding = {
        "rule_id": RULE_ID,
        "participant": participant.subject_id,
        "unblinded_by": user.display_name,
        "unblinded_by_username": user.username,
        "unblinded_at": at.isoformat(),
        "reason_code": participant.unblinding_reason_code,
        "justification": participant.unblinding_justification,
        "audience": ["site_clinician", "medical_monitor", "sponsor"],
    }
    alert, _ = alerts.upsert_from_finding(
        session,
        participant=participant,
        dosing_session=None,
        protocol_version_id=participant.protocol_version_id,
        rule_id=RULE_ID,
        kind=KIND,
        severity=AlertSeverity.CRITICAL,
        dedup_key=f"{RULE_ID}:{participant.id}",
        title=f"Emergency unblinding of participant {participant.subject_id}",
        message=message,
        finding=finding,
        found=alerts.Span.of(at),
    )
    with change_reason(
        session, "an emergency unblinding goes to the medical monitor at once", "escalate"
    ):
        alert.escalation_level = alerts.MEDICAL_MONITOR
        alert.escalated_at = at
    return alert
