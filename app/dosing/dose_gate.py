"""The supplemental dose gate, read from the database: would a supplemental dose given at a moment
be recorded without a deviation or an override reason?

:func:`judge_supplemental` is the one judgment of a supplemental dose: ``GET .../supplemental-dose-
gate`` answers with it, and recording a supplemental dose (app/dosing/doses.py) is refused for the
reasons it gives that the request does not answer, so the two cannot disagree. The decision is the
rules engine's (app/rules/dose_gate.py, pure), on the session as known at that moment
(app/sessions/snapshot.py: :func:`known_at`); whether the session takes doses at all is its
state now, since the dose is recorded now.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from app.dosing import service
from app.dosing.schemas import DosingSessionStatus
from app.models import DosingSession
from app.protocols import service as protocols
from app.rules import GateCheck, GateDecision, GateReason, evaluate_dose_gate
from app.rules.dose_limits import Refusal
from app.sessions.snapshot import known_at
from app.time_bounds import Bound

SESSION_FIELD = "dosing_session_id"


def _session_reasons(dosing_session: DosingSession) -> list[GateReason]:
    if dosing_session.status != DosingSessionStatus.IN_PROGRESS.value:
        text = (
            f"dosing session is {dosing_session.status}; doses are recorded while it is in progress"
        )
        return [GateReason(GateCheck.SESSION, Refusal.SESSION_NOT_IN_PROGRESS, SESSION_FIELD, text)]
    if dosing_session.baseline_attested_at is not None:
        text = (
            "return to baseline was attested at "
            f"{dosing_session.baseline_attested_at.isoformat()}; no dose can follow it"
        )
        return [GateReason(GateCheck.SESSION, Refusal.DOSE_AFTER_BASELINE, SESSION_FIELD, text)]
    return []


def judge_supplemental(
    session: Session,
    dosing_session: DosingSession,
    at: datetime,
    amount_mg: float | None,
    *,
    field: str,
) -> GateDecision:
    """Every reason a supplemental dose of ``amount_mg`` (default: the protocol's) given at ``at``
    would be refused, judged on what the server knew at ``at``. While the session is in progress,
    a time before it started or in the future is refused as input, naming ``field`` (422)."""
    refused = _session_reasons(dosing_session)
    if dosing_session.status == DosingSessionStatus.IN_PROGRESS.value:
        assert dosing_session.started_at is not None
        service.check_time(field, at, Bound(dosing_session.started_at, "the session started"))
    protocol = protocols.definition_of(session, dosing_session.protocol_version_id)
    if refused:  # the reasons are the session's alone; read it at a moment it had started by
        at = max(at, dosing_session.started_at or at)
    decision = evaluate_dose_gate(protocol, known_at(session, dosing_session, at), amount_mg)
    return decision.with_session_reasons(refused)
