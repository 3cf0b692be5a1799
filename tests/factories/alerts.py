"""An alert as the rules engine's findings will open it (the engine is wired in later)."""

from datetime import datetime

from sqlalchemy.orm import Session

from app.alerts import service as alerts
from app.models import Alert, DosingSession, Participant


def make_alert(
    db: Session,
    dosing_session: DosingSession,
    *,
    found_at: datetime,
    rule_id: str = "hypertensive-crisis",
    severity: str = "critical",
    systolic: int = 182,
) -> tuple[Alert, bool]:
    return alerts.upsert_from_finding(
        db,
        participant=db.get_one(Participant, dosing_session.participant_id),
        dosing_session=dosing_session,
        protocol_version_id=dosing_session.protocol_version_id,
        rule_id=rule_id,
        kind="threshold",
        severity=severity,
        dedup_key=f"{rule_id}:{dosing_session.id}",
        title="Hypertensive crisis",
        message=f"Systolic blood pressure {systolic} mmHg is at or above 180 mmHg.",
        finding={"rule_id": rule_id, "observed": {"SYSBP": systolic}, "threshold": 180},
        found_at=found_at,
    )
