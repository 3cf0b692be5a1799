"""Late readings, site-local times and escalation at once, through the API: a backlog received
45 min after it was measured says so in its alert (API and stream), its acknowledgement clock
starts at its receipt, and NEWS2 >= 7 goes to the medical monitor on its first reading."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts import history
from app.alerts import service as alerts
from app.models import Alert, DosingSession
from app.studies import service as studies
from app.studies.schemas import SiteCreate
from tests.alerts.test_first_found import FOUR
from tests.alerts.test_raising import Clock, alerts_of, post_batch, reading
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant, make_study

MEASURED = T0 + timedelta(minutes=20)  # 08:20 UTC, 03:20 in New York (EST, UTC-05:00)
RECEIVED = MEASURED + timedelta(minutes=45)
LATE_TEXT = "Late reading: measured 03:20 (UTC-05:00), received 04:05 (UTC-05:00), 45 min late."


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def new_york(db: Session) -> DosingSession:
    study = make_study(db, code="MAPP-NY")
    site = studies.create_site(
        db, study, SiteCreate(code="NY1", name="New York", timezone="America/New_York")
    )
    return make_dosing_session(db, make_participant(db, site, stage="randomised"))


def _at(alert: dict, field: str) -> datetime:
    return datetime.fromisoformat(alert[field])


def test_a_backlog_45_min_late_says_how_late_and_gets_its_full_acknowledgement_window(
    client, db: Session, pinned, new_york
):
    pinned.at(RECEIVED)
    post_batch(client, new_york, reading(MEASURED, SYSBP=172))

    alert = alerts_of(client, new_york)["hypertension-grade-3"]
    assert alert["severity"] == "critical"
    assert alert["message"].endswith(LATE_TEXT), alert["message"]
    assert "03:20 (UTC-05:00)" in alert["message"]  # the site's wall clock, with its offset
    assert alert["finding"]["at"] == MEASURED.isoformat()  # UTC stays in the data
    assert alert["finding"]["late"] == {
        "reading_id": alert["finding"]["evidence"][0],
        "measured_at": MEASURED.isoformat(),
        "received_at": RECEIVED.isoformat(),
        "minutes_late": 45.0,
    }
    # the protocol's 10 minutes count from the receipt, not from the measurement
    assert _at(alert, "first_found_at") == MEASURED
    assert _at(alert, "acknowledge_by") == RECEIVED + timedelta(minutes=10)
    assert alerts.escalate_overdue(db, RECEIVED + timedelta(minutes=5)) == []
    assert alerts_of(client, new_york)["hypertension-grade-3"]["escalation_level"] == 0

    # the stream's events carry the same alert
    page = history.read_events(db, 0, 100)
    created = [e.payload() for e in page.events if e.alert["id"] == alert["id"]]
    assert created and created[0]["alert"]["finding"]["late"]["minutes_late"] == 45.0
    assert created[0]["alert"]["message"].endswith(LATE_TEXT)


def test_a_reading_received_within_the_tolerance_is_not_late(client, pinned, new_york):
    pinned.at(MEASURED + timedelta(minutes=15))
    post_batch(client, new_york, reading(MEASURED, SYSBP=172))

    alert = alerts_of(client, new_york)["hypertension-grade-3"]
    assert alert["finding"]["late"] is None and "Late reading" not in alert["message"]
    assert _at(alert, "acknowledge_by") == MEASURED + timedelta(minutes=10)


def test_news2_of_7_is_escalated_at_once_on_its_first_reading(
    client, db: Session, pinned, new_york
):
    pinned.at(MEASURED)
    # resp 21 (2) + SpO2 95 (1) + pulse 92 (1) + new confusion (3) = 7: an emergency response
    post_batch(client, new_york, {**reading(MEASURED), "observations": FOUR, "new_confusion": True})

    alert = alerts_of(client, new_york)["news2"]
    assert (alert["severity"], alert["status"]) == ("critical", "open")
    assert alert["escalation_level"] == 1  # the medical monitor, without waiting
    assert _at(alert, "escalated_at") == MEASURED
    assert alert["finding"]["escalate_at_once"] is True
    assert "NEWS2 7 at 03:20 (UTC-05:00)" in alert["message"]
    types = [e.type for e in history.read_events(db, 0, 100).events if e.alert["id"] == alert["id"]]
    assert types[:2] == ["alert.opened", "alert.escalated"]


def test_news2_of_6_waits_for_its_acknowledgement_deadline(client, db: Session, pinned, new_york):
    pinned.at(MEASURED)
    # 4 + supplemental oxygen (2) = 6: an urgent response, critical but not escalated at once
    post_batch(
        client, new_york, {**reading(MEASURED), "observations": FOUR, "supplemental_oxygen": True}
    )

    alert = alerts_of(client, new_york)["news2"]
    assert (alert["severity"], alert["escalation_level"]) == ("critical", 0)
    assert alert["finding"]["escalate_at_once"] is False
    row = db.scalars(select(Alert).where(Alert.rule_id == "news2")).one()
    assert row.escalated_at is None


def test_news2_of_7_after_a_6_in_the_same_batch_escalates_the_alert(client, pinned, new_york):
    later = MEASURED + timedelta(minutes=5)
    pinned.at(later)
    six = {**reading(MEASURED), "observations": FOUR, "supplemental_oxygen": True}
    seven = {**reading(later), "observations": FOUR, "new_confusion": True}
    post_batch(client, new_york, six, seven)

    alert = alerts_of(client, new_york)["news2"]
    assert (alert["severity"], alert["occurrences"]) == ("critical", 2)
    assert "NEWS2 6" in alert["message"]  # the first at its severity
    assert alert["escalation_level"] == 1  # the 7 among them escalates it at once
