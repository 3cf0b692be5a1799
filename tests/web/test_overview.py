"""The overview's work lists: the dosing sessions of today and this week, the SAE reporting
clocks running and the visits out of window, each only for the caller's sites."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import clock
from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate
from app.models import User
from app.participants import service as participants
from app.participants.schemas import VisitReschedule
from app.permissions import Role
from app.users import service as users
from tests.conftest import T0, TEST_PASSWORD
from tests.web.test_signin import sign_in

NOW = T0 + timedelta(hours=10)  # Monday 2 February 2026, ten hours into both sessions


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)


@pytest.fixture
def browser(anonymous_client: TestClient) -> TestClient:
    anonymous_client.follow_redirects = False
    return anonymous_client


@pytest.fixture
def nurse(db: Session, two_sites) -> User:
    return users.create_user(
        db,
        username="lena",
        display_name="Dr. Lena Park",
        role=Role.CLINICIAN,
        password=TEST_PASSWORD,
        site_ids=[two_sites.a.site.id],
    )


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


def overview(browser: TestClient) -> str:
    assert sign_in(browser).status_code == 303
    page = browser.get("/")
    assert page.status_code == 200, page.text
    return page.text


def test_the_sessions_of_today_and_this_week_at_the_callers_sites(browser, nurse, two_sites):
    text = overview(browser)
    assert '<span class="figure">1</span> today' in text  # S01's session, not S02's
    week = text[text.index("Dosing sessions this week") : text.index("SAE reporting clocks")]
    assert "01-001" in week and "(today)" in week
    assert "02-001" not in week
    assert f'href="/sessions/{two_sites.a.dosing_session.id}"' in week


def test_sae_clocks_run_closest_deadline_first_and_overdue_says_so(browser, db, nurse, two_sites):
    a, b = two_sites.a.participant, two_sites.b.participant
    serious_event(db, a, "Chest pain", aware_hours_ago=2)
    serious_event(db, a, "Syncope", aware_hours_ago=30)  # the 24 h deadline passed 6 h ago
    serious_event(db, b, "Seizure", aware_hours_ago=1)  # another site's
    text = overview(browser)
    clocks = text[text.index("SAE reporting clocks") : text.index("Visits out of window")]
    assert clocks.index("Syncope") < clocks.index("Chest pain")
    assert "overdue by 6 h 0 min" in clocks
    assert "22 h 0 min left" in clocks
    assert "Seizure" not in clocks


def test_a_reported_or_non_serious_event_runs_no_clock(browser, db, nurse, two_sites):
    event = serious_event(db, two_sites.a.participant, "Chest pain", aware_hours_ago=2)
    event.sponsor_reported_at = NOW - timedelta(hours=1)
    db.flush()
    text = overview(browser)
    assert "every serious adverse event has been reported" in text
    assert "Headache" not in text  # the fixture's event is not serious


def test_visits_out_of_window_stand_out(browser, db, nurse, two_sites):
    visit = next(v for v in two_sites.a.visits.values() if v.status == "scheduled")
    late = visit.window_end_on + timedelta(days=3)
    participants.reschedule(db, visit, VisitReschedule(scheduled_on=late, reason="Travel"))
    other = next(v for v in two_sites.b.visits.values() if v.status == "scheduled")
    participants.reschedule(
        db,
        other,
        VisitReschedule(scheduled_on=other.window_end_on + timedelta(days=3), reason="Travel"),
    )
    text = overview(browser)
    lists = text[text.index("Visits out of window") :]
    assert visit.name in lists and "out of window" in lists
    assert late.strftime("%-d %b %Y") in lists
    assert lists.count("<tr>") == 2  # the header row and S01's visit, not S02's
