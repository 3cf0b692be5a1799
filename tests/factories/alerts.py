"""An alert as a finding opens it, a pinned clock, and the alerts the API lists."""

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import clock
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
        found=alerts.Span.of(found_at),
    )


class PinnedClock:
    """``app.clock.utcnow`` held at ``now``, moved by ``at``: what the services think is now."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
        self.now = now
        monkeypatch.setattr(clock, "utcnow", lambda: self.now)

    def at(self, when: datetime) -> None:
        self.now = when


def alerts_of(client: TestClient, **params: str) -> list[dict[str, Any]]:
    """The alerts the API lists for the filters (``participant_id=...``), oldest first."""
    response = client.get("/api/v1/alerts", params={**params, "limit": "500"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
