"""Findings of late readings say how late (without changing their occurrence key), messages give
times on the site's wall clock with the offset (DST-correct), and the escalate-at-once option."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.protocols.loader import ProtocolError, parse_protocol_text
from app.rules import evaluate, wording
from app.rules.snapshot import SessionSnapshot
from tests.rules.dsl import ROOT, ae, at, baseline, dose, protocol, session, vitals

MDMA = protocol("mdma-ptsd-phase3")
NEW_YORK = ZoneInfo("America/New_York")


def _crisis(received_after_minutes: float | None, zone: ZoneInfo = NEW_YORK) -> SessionSnapshot:
    """A session with one hypertensive crisis reading at T+60, received that long after."""
    snapshot = session(
        MDMA, baseline(-15), dose(0, 120), vitals(60, SYSBP=185, DIABP=95, PULSE=90), now=120
    ).snapshot()
    readings = [
        reading
        if received_after_minutes is None or reading.measured_at != at(60)
        else replace(
            reading, received_at=reading.measured_at + timedelta(minutes=received_after_minutes)
        )
        for reading in snapshot.readings
    ]
    return replace(snapshot, readings=readings, timezone=zone)


def _crisis_finding(snapshot: SessionSnapshot):
    [finding] = [f for f in evaluate(MDMA, snapshot) if f.rule_id == "hypertensive-crisis"]
    return finding


def test_a_late_reading_s_finding_says_how_late_in_local_time():
    finding = _crisis_finding(_crisis(45))
    # T+60 is 10:00 UTC on 2026-03-10: 06:00 in New York (EDT since 2026-03-08, UTC-04:00)
    assert finding.message.endswith(
        "Late reading: measured 06:00 (UTC-04:00), received 06:45 (UTC-04:00), 45 min late."
    )
    assert finding.late is not None and finding.late.minutes_late == 45
    assert finding.as_dict()["late"] == {
        "reading_id": "r60",
        "measured_at": at(60).isoformat(),
        "received_at": at(105).isoformat(),
        "minutes_late": 45.0,
    }
    assert finding.learnt_at == at(105)


def test_lateness_does_not_change_the_occurrence_key():
    on_time, late = _crisis_finding(_crisis(None)), _crisis_finding(_crisis(45))
    assert on_time.late is None and "Late reading" not in on_time.message
    assert late.occurrence_key == on_time.occurrence_key
    assert late.dedup_key == on_time.dedup_key and late.at == on_time.at


@pytest.mark.parametrize(("minutes", "is_late"), [(0, False), (15, False), (15.5, True)])
def test_the_protocol_tolerance_decides_what_is_late(minutes: float, is_late: bool):
    assert MDMA.vitals_schedule.late_after_minutes == 15
    assert (_crisis_finding(_crisis(minutes)).late is not None) is is_late


def test_messages_give_the_site_s_wall_clock_with_its_offset():
    finding = _crisis_finding(_crisis(None))
    assert "at 06:00 (UTC-04:00, T+60 min)" in finding.message
    utc = _crisis_finding(_crisis(None, ZoneInfo("UTC")))
    assert "at 10:00 (UTC+00:00, T+60 min)" in utc.message


def test_adverse_event_times_are_local_too():
    s = session(MDMA, dose(0, 120), ae(30, "Hospitalised", serious=True), now=60).snapshot()
    [sae, *_] = [
        f
        for f in evaluate(MDMA, replace(s, timezone=NEW_YORK))
        if f.rule_id == "serious-adverse-event"
    ]
    assert "site aware 2026-03-10 05:30 (UTC-04:00)" in sae.message


def test_the_offset_follows_daylight_saving_time():
    # 2026-03-08 02:00 EST -> 03:00 EDT in New York
    before = datetime(2026, 3, 8, 6, 59, tzinfo=UTC)
    after = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert wording.clock(before, NEW_YORK) == "01:59 (UTC-05:00)"
    assert wording.clock(after, NEW_YORK) == "03:00 (UTC-04:00)"
    assert wording.date_time(after, NEW_YORK) == "2026-03-08 03:00 (UTC-04:00)"


ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]


@given(st.integers(min_value=0, max_value=15 * 366 * 24 * 60), st.sampled_from(ZONES))
def test_a_local_time_and_its_offset_name_the_same_instant(minutes: int, zone_name: str):
    at_utc = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    text = wording.date_time(at_utc, ZoneInfo(zone_name))
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d) \(UTC([+-])(\d\d):(\d\d)\)", text)
    assert match, text
    local, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == "-" else 1)
    back = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=UTC) - offset
    assert back == at_utc


def test_news2_of_7_escalates_at_once_and_6_does_not():
    def news2(**answers: bool):
        s = session(
            MDMA,
            dose(0, 120),
            vitals(30, RESP=21, OXYSAT=95, SYSBP=124, DIABP=80, PULSE=92, TEMP=37.0, **answers),
            now=40,
        ).snapshot()
        [finding] = [f for f in evaluate(MDMA, s) if f.rule_id == "news2"]
        return finding

    seven, six = news2(confusion=True), news2(oxygen=True)
    assert (seven.observed["NEWS2"], seven.severity, seven.escalate_at_once) == (
        7,
        "critical",
        True,
    )
    assert (six.observed["NEWS2"], six.severity, six.escalate_at_once) == (6, "critical", False)
    assert "NEWS2 >= 7: critical, escalated at once" in seven.thresholds


MDMA_TEXT = (ROOT / "protocols" / "mdma-ptsd-phase3.yaml").read_text(encoding="utf-8")


def test_the_loader_refuses_escalate_at_once_on_a_warning_level():
    level = "- {at_least: 5, severity: critical}"
    text = MDMA_TEXT.replace(level, "- {at_least: 5, severity: warning, escalate_at_once: true}")
    with pytest.raises(ProtocolError, match="escalate_at_once is for critical levels"):
        parse_protocol_text(text)


def test_the_loader_refuses_escalate_at_once_on_a_warning_rule():
    rule = "  - id: overdue-temperature\n    kind: overdue_measurement\n    severity: warning\n"
    assert rule in MDMA_TEXT
    text = MDMA_TEXT.replace(rule, rule + "    escalate_at_once: true\n")
    with pytest.raises(ProtocolError, match="escalate_at_once is for critical rules"):
        parse_protocol_text(text)
