"""The supplemental dose gate, read from the database: may the supplemental dose be given now?

The decision is the rules engine's (app/rules/dose_gate.py, pure); this module gives it the
session as known at the moment asked about (app/sessions/snapshot.py). The endpoint
``GET .../supplemental-dose-gate`` answers with :func:`dose_gate`; recording a supplemental dose is
refused while :func:`clinical_gate_reasons` close the gate, unless a clinician overrides them.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from app.models import DosingSession
from app.protocols import service as protocols
from app.rules import GateCheck, GateDecision, evaluate_dose_gate
from app.sessions.snapshot import known_at


def dose_gate(session: Session, dosing_session: DosingSession, now: datetime) -> GateDecision:
    """May the supplemental dose be given at ``now``? Judged on what was known by ``now``."""
    protocol = protocols.definition_of(session, dosing_session.protocol_version_id)
    return evaluate_dose_gate(protocol, known_at(session, dosing_session, now))


def clinical_gate_reasons(
    session: Session, dosing_session: DosingSession, at: datetime
) -> list[str]:
    """Why the gate's dose_gate rules (readings, open alerts) close it at ``at``. The reasons of
    the dose limits (window, amounts, doses already given) are the dosing service's protocol
    checks, which a deviation reason answers."""
    return dose_gate(session, dosing_session, at).reasons_of(GateCheck.CLINICAL)
