"""Overdue alerts that a late backlog disproves: while the tablet is offline the sweep finds the
due times it does not hear of overdue; when the backlog arrives with the measurements that met
them, those occurrences are withdrawn (audited), a warning alert left with none resolves itself
with the reason, a critical one nobody acknowledged stays open marked disproved, and an alert
with occurrences left names the first due time still missed. Through HTTP, the clock pinned."""

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts import evaluation
from app.alerts.evaluation import occurrence_hash
from app.alerts.sweep import sweep
from app.models import AlertOccurrence, AuditRecord, DosingSession, Participant, Site
from app.protocols import service as protocols
from app.rules import evaluate
from app.sessions.snapshot import snapshot_of
from tests.factories.alerts import PinnedClock
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import MDMA, make_participant, make_site, make_study

API = "/api/v1"
DOSED = T0 + timedelta(minutes=30)  # 08:30 (UTC+00:00): blood pressure and pulse due every 30 min
# (grace 10 min), temperature every 60 min (grace 15 min), counted from here
OFFLINE_SWEEP = DOSED + timedelta(minutes=80)  # 09:50: due times +30 and +60 are overdue
BACKLOG_ARRIVES = DOSED + timedelta(minutes=95)  # 10:05: before +90 is overdue (10:10)
UNITS = {"SYSBP": "mmHg", "DIABP": "mmHg", "PULSE": "beats/min", "TEMP": "C"}
NORMAL = {"SYSBP": 124, "DIABP": 78, "PULSE": 80, "TEMP": 36.9}


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> PinnedClock:
    return PinnedClock(monkeypatch, DOSED)


@pytest.fixture
def dosed(db: Session, participant: Participant) -> DosingSession:
    return make_dosing_session(db, participant, initial_dose_mg=80)


def reading(minutes_after_dose: int, *codes: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": (DOSED + timedelta(minutes=minutes_after_dose)).isoformat(),
        "observations": [
            {"code": code, "value": NORMAL[code], "unit": UNITS[code]} for code in codes or NORMAL
        ],
    }


def post_batch(client, dosing_session: DosingSession, *readings: dict[str, Any]) -> None:
    response = client.post(
        f"{API}/dosing-sessions/{dosing_session.id}/vital-readings/batch",
        json={"readings": list(readings)},
    )
    assert response.status_code == 200, response.text
    assert all(item["status"] == "accepted" for item in response.json()["results"])


def alert_of(client, dosing_session: DosingSession, rule_id: str) -> dict[str, Any]:
    listed = client.get(f"{API}/alerts", params={"dosing_session_id": str(dosing_session.id)})
    assert listed.status_code == 200, listed.text
    (alert,) = [a for a in listed.json()["items"] if a["rule_id"] == rule_id]
    shown = client.get(f"{API}/alerts/{alert['id']}")
    assert shown.status_code == 200, shown.text
    return shown.json()


def go_offline_until_the_sweep(client, db, pinned, dosing_session: DosingSession) -> None:
    """The tablet sends the reading at the dose, then nothing; the scheduler sweeps."""
    post_batch(client, dosing_session, reading(0))
    pinned.at(OFFLINE_SWEEP)
    sweep(db, OFFLINE_SWEEP)


def withdraw_records(db: Session, alert_id: str) -> list[AuditRecord]:
    records = db.scalars(
        select(AuditRecord)
        .where(AuditRecord.action == "withdraw", AuditRecord.entity_id == alert_id)
        .order_by(AuditRecord.sequence)
    )
    return list(records)


def test_an_overdue_alert_disproved_by_a_backlog_resolves_with_its_reason(
    db, client, pinned, dosed
):
    go_offline_until_the_sweep(client, db, pinned, dosed)
    overdue = alert_of(client, dosed, "overdue-temperature")
    assert (overdue["status"], overdue["occurrences"]) == ("open", 1)  # due 09:30, + 15 min
    bp = alert_of(client, dosed, "overdue-bp-pulse")
    assert (bp["status"], bp["occurrences"]) == ("open", 2)  # due 09:00 and 09:30

    pinned.at(BACKLOG_ARRIVES)
    backlog = [reading(30, "SYSBP", "DIABP", "PULSE"), reading(61)]
    post_batch(client, dosed, *backlog)

    temperature = alert_of(client, dosed, "overdue-temperature")
    assert (temperature["status"], temperature["occurrences"]) == ("resolved", 0)
    assert temperature["resolved_by_id"] is None and temperature["disproved"] is None
    assert temperature["resolution"] == (
        "measured in time, arrived late: Temperature due at 09:30 (UTC+00:00, T+60 min): "
        "measured at 09:31 (UTC+00:00), arrived late at 10:05 (UTC+00:00)"
    )
    bp = alert_of(client, dosed, "overdue-bp-pulse")
    assert (bp["status"], bp["occurrences"]) == ("resolved", 0)
    assert (
        "due at 09:00 (UTC+00:00, T+30 min): measured at 09:00 (UTC+00:00), arrived late at 10:05"
        in (bp["resolution"])
    )
    assert "due at 09:30 (UTC+00:00, T+60 min): measured at 09:31 (UTC+00:00)" in bp["resolution"]

    # the occurrences are kept, withdrawn with their reasons, each withdrawal audited
    (occurrence,) = temperature["occurrence_page"]["items"]
    assert occurrence["withdrawn"] is True
    assert occurrence["withdrawn_reason"] == (
        "Temperature due at 09:30 (UTC+00:00, T+60 min): measured at 09:31 (UTC+00:00), "
        "arrived late at 10:05 (UTC+00:00)"
    )
    assert occurrence["observed"]["missing"] == "TEMP"
    (record,) = withdraw_records(db, temperature["id"])
    assert record.entity_type == "alert_occurrences"
    assert record.after["occurrence_hash"] == occurrence["occurrence_id"]
    assert record.after["met_by"] == [backlog[1]["id"]]
    assert record.reason == occurrence["withdrawn_reason"]
    closing = db.scalars(
        select(AuditRecord)
        .where(AuditRecord.entity_type == "alerts", AuditRecord.entity_id == temperature["id"])
        .order_by(AuditRecord.sequence)
    ).all()[-1]
    assert (closing.action, closing.reason) == ("resolve", temperature["resolution"])

    # judged again later, the met due times are never raised again
    sweep(db, BACKLOG_ARRIVES)
    assert alert_of(client, dosed, "overdue-temperature")["status"] == "resolved"


def test_a_backlog_meeting_the_first_due_time_only_moves_the_alert_to_the_next(
    db, client, pinned, dosed
):
    go_offline_until_the_sweep(client, db, pinned, dosed)
    before = alert_of(client, dosed, "overdue-bp-pulse")
    assert "09:00 (UTC+00:00, T+30 min)" in before["message"]

    pinned.at(BACKLOG_ARRIVES)
    # temperature due at +60 with 15 min of grace: measured one minute too late, it meets nothing
    post_batch(client, dosed, reading(28, "SYSBP", "DIABP", "PULSE"), reading(76, "TEMP"))
    temperature = alert_of(client, dosed, "overdue-temperature")
    assert (temperature["status"], temperature["occurrences"]) == ("open", 1)
    assert withdraw_records(db, temperature["id"]) == []

    after = alert_of(client, dosed, "overdue-bp-pulse")
    assert (after["id"], after["status"], after["occurrences"]) == (before["id"], "open", 1)
    assert (
        "due at 09:30 (UTC+00:00, T+60 min)" in after["message"] and "09:00" not in after["message"]
    )
    assert after["finding"]["observed"]["due_minute"] == 60
    still_missed = DOSED + timedelta(minutes=70)
    for field in ("first_found_at", "severity_since", "last_found_at"):
        assert datetime.fromisoformat(after[field]) == still_missed, field
    items = after["occurrence_page"]["items"]
    assert [(i["observed"]["due_minute"], i["withdrawn"]) for i in items] == [
        (30, True),
        (60, False),
    ]
    assert (
        "measured at 08:58 (UTC+00:00), arrived late at 10:05 (UTC+00:00)"
        in items[0]["withdrawn_reason"]
    )


def test_a_due_time_met_for_some_measures_names_only_those_still_missing(db, client, pinned, dosed):
    go_offline_until_the_sweep(client, db, pinned, dosed)
    before = alert_of(client, dosed, "overdue-bp-pulse")
    assert before["message"].startswith(
        "Systolic BP, diastolic BP and pulse due at 09:00 (UTC+00:00, T+30 min)"
    )

    pinned.at(BACKLOG_ARRIVES)
    blood_pressure = reading(30, "SYSBP", "DIABP")  # the pulse was not taken
    post_batch(client, dosed, blood_pressure)

    after = alert_of(client, dosed, "overdue-bp-pulse")
    assert (after["status"], after["occurrences"]) == ("open", 2)  # still overdue for the pulse
    assert after["message"].startswith("Pulse due at 09:00 (UTC+00:00, T+30 min) was not measured")
    first = after["occurrence_page"]["items"][0]
    assert (first["observed"]["missing"], first["withdrawn"]) == ("PULSE", False)
    (record,) = db.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "narrow", AuditRecord.entity_id == after["id"]
        )
    )
    assert (record.after["was_missing"], record.after["missing"]) == (
        "SYSBP, DIABP, PULSE",
        "PULSE",
    )
    assert record.after["met_by"] == [blood_pressure["id"]]
    assert record.reason == (
        "Systolic BP and diastolic BP due at 09:00 (UTC+00:00, T+30 min): "
        "measured at 09:00 (UTC+00:00), arrived late at 10:05 (UTC+00:00)"
    )


@pytest.fixture
def critical_overdue(db: Session, tmp_path: Path) -> DosingSession:
    """A session under a protocol whose overdue temperature is critical."""
    text = MDMA.read_text()
    warning = "  - id: overdue-temperature\n    kind: overdue_measurement\n    severity: warning"
    assert warning in text and 'version: "1.4"' in text
    edited = tmp_path / "overdue-temperature-critical.yaml"
    edited.write_text(
        text.replace(warning, warning.replace("warning", "critical"), 1).replace(
            'version: "1.4"', 'version: "1.4-critical-overdue"', 1
        )
    )
    site: Site = make_site(db, make_study(db, edited, code="OVERDUE-C"))
    participant = make_participant(db, site, stage="randomised")
    return make_dosing_session(db, participant, initial_dose_mg=80)


def test_a_critical_overdue_alert_nobody_acknowledged_is_marked_disproved_not_closed(
    db, client, pinned, critical_overdue
):
    go_offline_until_the_sweep(client, db, pinned, critical_overdue)
    assert alert_of(client, critical_overdue, "overdue-temperature")["severity"] == "critical"

    pinned.at(BACKLOG_ARRIVES)
    post_batch(client, critical_overdue, reading(60))

    alert = alert_of(client, critical_overdue, "overdue-temperature")
    assert (alert["status"], alert["occurrences"]) == ("open", 0)
    assert alert["resolved_at"] is None
    assert alert["disproved"] == (
        "measured in time, arrived late: Temperature due at 09:30 (UTC+00:00, T+60 min): "
        "measured at 09:30 (UTC+00:00), arrived late at 10:05 (UTC+00:00)"
    )
    # it waits for a clinician, who acknowledges then resolves it as usual
    acknowledged = client.post(f"{API}/alerts/{alert['id']}/acknowledge", json={"note": "seen"})
    assert acknowledged.status_code == 200, acknowledged.text
    resolved = client.post(
        f"{API}/alerts/{alert['id']}/resolve", json={"resolution": "measured on time, tablet off"}
    )
    assert resolved.status_code == 200, resolved.text


def test_an_acknowledged_critical_overdue_alert_disproved_resolves_itself(
    db, client, pinned, critical_overdue
):
    go_offline_until_the_sweep(client, db, pinned, critical_overdue)
    alert = alert_of(client, critical_overdue, "overdue-temperature")
    assert client.post(f"{API}/alerts/{alert['id']}/acknowledge", json={}).status_code == 200

    pinned.at(BACKLOG_ARRIVES)
    post_batch(client, critical_overdue, reading(60))

    alert = alert_of(client, critical_overdue, "overdue-temperature")
    assert (alert["status"], alert["occurrences"], alert["resolved_by_id"]) == ("resolved", 0, None)
    assert alert["resolution"].startswith("measured in time, arrived late: Temperature due at")


def test_occurrences_remember_their_withdrawal_in_the_database(db, client, pinned, dosed):
    go_offline_until_the_sweep(client, db, pinned, dosed)
    pinned.at(BACKLOG_ARRIVES)
    post_batch(client, dosed, reading(60, "TEMP"))
    alert = alert_of(client, dosed, "overdue-temperature")
    (row,) = db.scalars(
        select(AlertOccurrence).where(AlertOccurrence.alert_id == uuid.UUID(alert["id"]))
    )
    assert row.withdrawn_at == BACKLOG_ARRIVES
    assert row.finding is not None and row.finding["rule_id"] == "overdue-temperature"


# --- the reading that disproved it entered in error ---------------------------------------------


def enter_in_error(client, reading_id: str, reason: str) -> None:
    response = client.post(
        f"{API}/vital-readings/{reading_id}/entered-in-error", json={"reason": reason}
    )
    assert response.status_code == 200, response.text


def test_a_due_time_met_by_a_reading_later_entered_in_error_is_overdue_again(
    db, client, pinned, dosed
):
    go_offline_until_the_sweep(client, db, pinned, dosed)
    pinned.at(BACKLOG_ARRIVES)
    late = reading(60, "TEMP")
    post_batch(client, dosed, late)
    resolved = alert_of(client, dosed, "overdue-temperature")
    assert resolved["status"] == "resolved"

    enter_in_error(client, late["id"], "probe on the wrong participant")
    listed = client.get(f"{API}/alerts", params={"dosing_session_id": str(dosed.id)}).json()
    temperature = [a for a in listed["items"] if a["rule_id"] == "overdue-temperature"]
    assert [a["status"] for a in temperature] == ["resolved", "open"]  # never reopened: a new one
    again = client.get(f"{API}/alerts/{temperature[1]['id']}").json()
    assert again["occurrences"] == 1 and "09:30 (UTC+00:00, T+60 min)" in again["message"]


def test_a_disproved_critical_alert_counts_its_due_time_again_when_the_reading_was_wrong(
    db, client, pinned, critical_overdue
):
    go_offline_until_the_sweep(client, db, pinned, critical_overdue)
    pinned.at(BACKLOG_ARRIVES)
    late = reading(60, "TEMP")
    post_batch(client, critical_overdue, late)
    assert alert_of(client, critical_overdue, "overdue-temperature")["disproved"] is not None

    reason = "reading of another session"
    enter_in_error(client, late["id"], reason)
    alert = alert_of(client, critical_overdue, "overdue-temperature")
    assert (alert["status"], alert["occurrences"], alert["disproved"]) == ("open", 1, None)
    assert "09:30 (UTC+00:00, T+60 min)" in alert["message"]
    (item,) = alert["occurrence_page"]["items"]
    assert (item["withdrawn"], item["withdrawn_reason"]) == (False, None)
    (record,) = db.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "reinstate", AuditRecord.entity_id == alert["id"]
        )
    )
    assert record.reason == f"what disproved it was entered in error: {reason}"
    assert record.after["record_entered_in_error"] == late["id"]
    assert record.after["had_been_withdrawn_for"].startswith(
        "Temperature due at 09:30 (UTC+00:00, T+60 min)"
    )


# --- the property -------------------------------------------------------------------------------

GROUPS = {
    "all": tuple(NORMAL),
    "bp-pulse": ("SYSBP", "DIABP", "PULSE"),
    "bp": ("SYSBP", "DIABP"),
    "temperature": ("TEMP",),
}


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    backlog=st.lists(
        st.tuples(st.integers(min_value=0, max_value=190), st.sampled_from(sorted(GROUPS))),
        min_size=1,
        max_size=8,
        unique_by=lambda r: r[0],
    ),
    batches=st.integers(min_value=1, max_value=3),
)
def test_after_a_backlog_the_overdue_occurrences_counted_are_the_engines_findings(
    db, client, monkeypatch, site, backlog, batches
):
    """Offline from the dose on, swept at T+200 min, then the backlog arrives in one to three
    batches, oldest first: the overdue occurrences still counted are exactly the overdue
    findings of judging the session with every reading, each saying what it still misses, and
    an overdue alert counting none has resolved itself."""
    pinned = PinnedClock(monkeypatch, DOSED + timedelta(minutes=200))
    participant = make_participant(db, site, uuid.uuid4().hex[:8].upper(), stage="randomised")
    dosing_session = make_dosing_session(db, participant, initial_dose_mg=80)
    sweep(db, pinned.now)
    pinned.at(DOSED + timedelta(minutes=205))  # before T+210, the next moment one is overdue
    readings = [reading(minute, *GROUPS[group]) for minute, group in sorted(backlog)]
    size = -(-len(readings) // batches)
    for start in range(0, len(readings), size):
        post_batch(client, dosing_session, *readings[start : start + size])

    protocol = protocols.definition_of(db, dosing_session.protocol_version_id)
    judged = evaluation.keyed(evaluate(protocol, snapshot_of(db, dosing_session, pinned.now)))
    expected = {
        occurrence_hash(each.occurrence_key): each.finding
        for each in judged
        if each.finding.kind == "overdue_measurement"
    }
    listed = client.get(f"{API}/alerts", params={"dosing_session_id": str(dosing_session.id)})
    counted = {}
    for alert in listed.json()["items"]:
        if alert["kind"] != "overdue_measurement":
            continue
        rows = db.scalars(
            select(AlertOccurrence).where(AlertOccurrence.alert_id == uuid.UUID(alert["id"]))
        ).all()
        left = [row for row in rows if row.withdrawn_at is None]
        assert alert["occurrences"] == len(left)
        assert alert["status"] == ("open" if left else "resolved")
        if left:
            first = min(left, key=lambda row: row.found_at)
            assert alert["message"] == expected[first.occurrence_hash].message
        counted.update({row.occurrence_hash: row.finding for row in left})
    assert set(counted) == set(expected)
    for hashed, finding in counted.items():
        assert finding is not None
        assert finding["observed"]["missing"] == expected[hashed].observed["missing"]
