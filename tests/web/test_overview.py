"""The overview's work lists: the dosing sessions of today and this week, the SAE reporting
clocks running and the visits out of window, each only for the caller's sites."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import clock
from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate
from app.participants import service as participants
from app.participants.schemas import VisitReschedule
from app.permissions import Role
from tests.conftest import T0

NOW = T0 + timedelta(hours=10)  # Monday 2 February 2026, ten hours into both sessions


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)


def serious_event(db: Session, participant, term: str, aware_hours_ago: float):
    return adverse_events.create(
        db,
        participant,
        AdverseEventCreate(
            verbatim_term=term,
            onset_at=NOW - timedelta(hours=aware_hours_ago + 1),
            site_aware_at=NOW - timedelta(hours=aware_hours_ago),
            severity="severe",
            seriousness_criteria=["hospitalisation"],
            relatedness="possible",
            expectedness="unexpected",
            action_taken="not_applicable",
            outcome="recovering",
        ),
    )


@pytest.fixture
def overview(web: TestClient, person, two_sites) -> Callable[[], str]:
    """The overview as a clinician of S01 sees it."""
    person(Role.CLINICIAN, two_sites.a.site)

    def read() -> str:
        page = web.get("/")
        assert page.status_code == 200, page.text
        return page.text

    return read


def test_the_sessions_of_today_and_this_week_at_the_callers_sites(overview, two_sites):
    text = overview()
    assert '<span class="figure">1</span> today' in text  # S01's session, not S02's
    week = text[text.index("Dosing sessions this week") : text.index("SAE reporting clocks")]
    assert "01-001" in week and "(today)" in week
    assert "02-001" not in week
    assert f'href="/sessions/{two_sites.a.dosing_session.id}"' in week


def test_sae_clocks_run_closest_deadline_first_and_overdue_says_so(overview, db, two_sites):
    a, b = two_sites.a.participant, two_sites.b.participant
    serious_event(db, a, "Chest pain", aware_hours_ago=2)
    serious_event(db, a, "Syncope", aware_hours_ago=30)  # the 24 h deadline passed 6 h ago
    serious_event(db, b, "Seizure", aware_hours_ago=1)  # another site's
    text = overview()
    clocks = text[text.index("SAE reporting clocks") : text.index("Visits out of window")]
    assert clocks.index("Syncope") < clocks.index("Chest pain")
    assert "overdue by 6 h 0 min" in clocks
    assert "22 h 0 min left" in clocks
    assert "Seizure" not in clocks


def test_a_reported_or_non_serious_event_runs_no_clock(overview, db, two_sites):
    event = serious_event(db, two_sites.a.participant, "Chest pain", aware_hours_ago=2)
    event.sponsor_reported_at = NOW - timedelta(hours=1)
    db.flush()
    text = overview()
    assert "every serious adverse event has been reported" in text
    assert "Headache" not in text  # the fixture's event is not serious


def test_visits_out_of_window_stand_out(overview, db, two_sites):
    visit = next(v for v in two_sites.a.visits.values() if v.status == "scheduled")
    late = visit.window_end_on + timedelta(days=3)
    participants.reschedule(db, visit, VisitReschedule(scheduled_on=late, reason="Travel"))
    other = next(v for v in two_sites.b.visits.values() if v.status == "scheduled")
    participants.reschedule(
        db,
        other,
        VisitReschedule(scheduled_on=other.window_end_on + timedelta(days=3), reason="Travel"),
    )
    text = overview()
    lists = text[text.index("Visits out of window") :]
    assert visit.name in lists and "out of window" in lists
    assert late.strftime("%-d %b %Y") in lists
    assert lists.count("<tr>") == 2  # the header row and S01's visit, not S02's
