"""A bedside device lists the dosing sessions in progress at its site (GET
/api/v1/devices/me/dosing-sessions): its own site only, in progress only, visit, start and
subject id, and never an arm."""

from datetime import datetime, timedelta
from typing import Any

from app.models import Participant
from app.users.service import create_device
from tests.auth.accounts import bearer, make_account
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant

URL = "/api/v1/devices/me/dosing-sessions"


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_a_device_sees_the_sessions_in_progress_at_its_site_and_no_arm(http_client, db, two_sites):
    a = two_sites.a
    planned = make_dosing_session(
        db, make_participant(db, a.site, "01-002", stage="randomised"), started_at=None
    )
    ended = make_dosing_session(
        db, make_participant(db, a.site, "01-003", stage="randomised"), started_at=T0
    )
    ended.status, ended.ended_at = "ended", T0 + timedelta(hours=8)
    later = make_dosing_session(
        db,
        make_participant(db, a.site, "01-004", stage="randomised"),
        started_at=T0 + timedelta(hours=1),
    )
    db.flush()
    _, token = create_device(db, "tablet-s01-1", a.site.id)

    response = http_client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == [str(a.dosing_session.id), str(later.id)]
    first = body["items"][0]
    assert set(first) == {"id", "visit_code", "visit_name", "started_at", "subject_id"}
    assert (first["visit_code"], first["subject_id"]) == ("EXP1", "01-001")
    assert first["visit_name"]
    assert datetime.fromisoformat(first["started_at"]) == T0
    # never an arm: no key that says it, no arm code in the text
    assert not {key for key in _keys(body) if "arm" in key.lower()}
    arms = {p.arm_code for p in db.query(Participant).all() if p.arm_code}
    assert arms and not any(arm in response.text for arm in arms)
    # the other site's session, the planned and the ended ones are not there
    assert str(two_sites.b.dosing_session.id) not in response.text
    assert str(planned.id) not in response.text and str(ended.id) not in response.text
    assert "02-001" not in response.text


def test_pages_and_people(http_client, db, two_sites):
    a = two_sites.a
    for number in range(2, 5):
        participant = make_participant(db, a.site, f"01-00{number}", stage="randomised")
        make_dosing_session(db, participant, started_at=T0 + timedelta(minutes=number))
    _, token = create_device(db, "tablet-s01-1", a.site.id)
    headers = {"Authorization": f"Bearer {token}"}
    first = http_client.get(URL, params={"limit": 3}, headers=headers).json()
    rest = http_client.get(
        URL, params={"limit": 3, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    seen = [item["subject_id"] for item in first["items"] + rest["items"]]
    assert seen == ["01-001", "01-002", "01-003", "01-004"]
    assert rest["next_cursor"] is None
    # people read sessions with their own routes, not this one
    coordinator = make_account(db, "cora", "coordinator", [a.site])
    assert http_client.get(URL, headers=bearer(db, coordinator)).status_code == 403
