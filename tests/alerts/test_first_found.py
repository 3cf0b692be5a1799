"""First found means first: an alert is dated by its earliest occurrence and names the first at
its severity; later occurrences are counted, never put in its place. Through the API."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.models import DosingSession, Site
from tests.alerts.test_raising import Clock, alerts_of, post_batch, reading
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import MDMA, make_participant, make_site, make_study
from tests.vitals.readings import observation

AT_0110, AT_0140 = T0 + timedelta(minutes=70), T0 + timedelta(minutes=100)

# NEWS2 on room air and alert: resp 21 (2) + SpO2 95 (1) + pulse 92 (1) = 4; supplemental oxygen
# makes it 6, new confusion 7. The shipped protocol makes both critical (NEWS2's urgent and
# emergency responses); `warning_at_5` is a protocol that warns at 5, for an alert that escalates.
FOUR = [
    observation("RESP", 21, "breaths/min"),
    observation("OXYSAT", 95, "%"),
    observation("SYSBP", 124, "mmHg"),
    observation("DIABP", 80, "mmHg"),
    observation("PULSE", 92, "beats/min"),
    observation("TEMP", 37.0, "C"),
]


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def undosed(db: Session, site: Site) -> DosingSession:
    """In progress since T0, no dose yet: nothing is overdue, no trend has a baseline."""
    return make_dosing_session(db, make_participant(db, site, stage="randomised"))


def news2_reading(when: datetime, **answers: bool):
    return {**reading(when), "observations": FOUR, **answers}


def _at(alert, field: str) -> datetime:
    return datetime.fromisoformat(alert[field])


def test_a_backlog_batch_is_dated_by_its_first_reading_and_names_it(client, pinned, undosed):
    pinned.at(T0 + timedelta(hours=2))
    post_batch(client, undosed, reading(AT_0110, SYSBP=172), reading(AT_0140, SYSBP=176))

    alert = alerts_of(client, undosed)["hypertension-grade-3"]
    assert (alert["severity"], alert["occurrences"]) == ("critical", 2)
    assert _at(alert, "first_found_at") == _at(alert, "severity_since") == AT_0110
    assert _at(alert, "last_found_at") == AT_0140
    assert "172 mmHg" in alert["message"] and "176" not in alert["message"]
    assert alert["finding"]["at"] == AT_0110.isoformat()
    shown = client.get(f"/api/v1/alerts/{alert['id']}").json()
    assert _at(shown, "severity_since") == AT_0110


@pytest.fixture
def warning_at_5(db: Session, tmp_path: Path) -> DosingSession:
    """A session under a protocol whose NEWS2 rule warns at 5 and is critical at 7."""
    text = MDMA.read_text()
    urgent = "- {at_least: 5, severity: critical}"
    assert urgent in text and 'version: "1.4"' in text
    edited = tmp_path / "news2-warning-at-5.yaml"
    edited.write_text(
        text.replace(urgent, "- {at_least: 5, severity: warning}", 1).replace(
            'version: "1.4"', 'version: "1.4-warning-at-5"', 1
        )
    )
    site = make_site(db, make_study(db, edited, code="NEWS2-W5"))
    return make_dosing_session(db, make_participant(db, site, stage="randomised"))


def test_a_later_reading_of_a_higher_severity_dates_the_severity_not_the_alert(
    client, pinned, warning_at_5
):
    undosed = warning_at_5
    pinned.at(AT_0140)  # received as measured: the clock runs from the finding
    post_batch(
        client,
        undosed,
        news2_reading(AT_0110, supplemental_oxygen=True),
        news2_reading(AT_0140, new_confusion=True),
    )

    alert = alerts_of(client, undosed)["news2"]
    assert (alert["severity"], alert["occurrences"]) == ("critical", 2)
    assert _at(alert, "first_found_at") == AT_0110
    assert _at(alert, "severity_since") == AT_0140
    assert "NEWS2 7" in alert["message"]  # the first occurrence at critical
    # the MDMA protocol: a critical alert is acknowledged within 10 minutes of reaching critical
    assert _at(alert, "acknowledge_by") == AT_0140 + timedelta(minutes=10)


def test_a_later_batch_at_the_same_severity_only_adds_to_the_count(client, pinned, undosed):
    pinned.at(T0 + timedelta(hours=2))
    post_batch(client, undosed, reading(AT_0110, SYSBP=172))
    before = alerts_of(client, undosed)["hypertension-grade-3"]

    post_batch(client, undosed, reading(AT_0140, SYSBP=176))
    after = alerts_of(client, undosed)["hypertension-grade-3"]
    assert after["id"] == before["id"] and after["occurrences"] == 2
    for unchanged in ("first_found_at", "severity_since", "message", "finding", "acknowledge_by"):
        assert after[unchanged] == before[unchanged], unchanged
    assert _at(after, "last_found_at") == AT_0140
