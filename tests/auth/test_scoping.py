"""Site scoping through the HTTP API: a user of site S01 cannot learn that the records of site S02
exist (404, never 403, answered like a missing record), lists hold only their sites' records, and
a bedside device posts vitals for its own site's sessions and does nothing else."""

import uuid

import pytest
from sqlalchemy import func, select

from app.models import Participant, VitalReading
from app.permissions import Role
from tests.factories.trial import make_site, make_study

API = "/api/v1"


def _same_answer(response, other_id, missing, missing_id) -> None:
    """``response`` (for another site's record) says exactly what a missing record's says."""
    assert response.status_code == missing.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body, expected = response.json(), missing.json()
    for key in ("instance", "detail"):
        body[key] = body[key].replace(str(other_id), "<id>")
        expected[key] = expected[key].replace(str(missing_id), "<id>")
    assert body == expected


@pytest.mark.parametrize(
    ("path", "record"),
    [
        ("/participants/{}", "participant"),
        ("/participants/{}/visits", "participant"),
        ("/adverse-events/{}", "adverse_event"),
        ("/dosing-sessions/{}", "dosing_session"),
        ("/dosing-sessions/{}/vital-readings", "dosing_session"),
        ("/vital-readings/{}", "reading"),
        ("/assessments/{}", "assessment"),
        ("/sites/{}", "site"),
    ],
)
def test_a_record_of_another_site_is_not_found_like_a_missing_one(
    client_as, two_sites, path, record
):
    coordinator = client_as(Role.COORDINATOR, [two_sites.a.site])
    own = getattr(two_sites.a, record).id
    other = getattr(two_sites.b, record).id
    assert coordinator.get(API + path.format(own)).status_code == 200
    missing = uuid.uuid4()
    _same_answer(
        coordinator.get(API + path.format(other)),
        other,
        coordinator.get(API + path.format(missing)),
        missing,
    )


def test_changes_to_another_sites_records_are_not_found_either(client_as, two_sites):
    therapist = client_as(Role.THERAPIST, [two_sites.a.site])
    b = two_sites.b
    calls = [
        ("POST", f"/participants/{b.participant.id}/adverse-events", {}),
        ("PATCH", f"/adverse-events/{b.adverse_event.id}", {"severity": "moderate"}),
        ("POST", f"/dosing-sessions/{b.dosing_session.id}/end", {}),
        ("POST", f"/doses/{b.dose.id}/entered-in-error", {"reason": "wrong participant"}),
        ("PATCH", f"/notes/{b.note.id}", {"text": "x", "reason": "typo fixed"}),
        ("GET", f"/history/participants/{b.participant.id}", None),
    ]
    for method, path, body in calls:
        response = therapist.request(method, API + path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert therapist.get(f"{API}/notes/{two_sites.a.note.id}").status_code == 200


def test_lists_hold_only_the_callers_sites(client_as, two_sites):
    a, b = two_sites.a, two_sites.b
    coordinator = client_as(Role.COORDINATOR, [a.site])

    def ids(path, **params):
        response = coordinator.get(API + path, params=params)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert ids("/participants") == {str(a.participant.id)}
    assert ids("/participants", site_id=str(b.site.id)) == set()
    assert ids("/participants", study_id=str(two_sites.study.id)) == {str(a.participant.id)}
    assert ids("/dosing-sessions") == {str(a.dosing_session.id)}
    assert ids("/dosing-sessions", participant_id=str(b.participant.id)) == set()
    assert ids("/adverse-events") == {str(a.adverse_event.id)}
    assert ids("/adverse-events", participant_id=str(b.participant.id)) == set()
    assert ids(f"/studies/{two_sites.study.id}/sites") == {str(a.site.id)}


def test_the_study_wide_roles_see_every_site_and_staff_of_two_sites_see_both(client_as, two_sites):
    both = {str(two_sites.a.participant.id), str(two_sites.b.participant.id)}
    monitor = client_as(Role.MEDICAL_MONITOR)
    twice_placed = client_as(Role.CLINICIAN, [two_sites.a.site, two_sites.b.site])
    for caller in (monitor, twice_placed):
        page = caller.get(f"{API}/participants").json()
        assert {p["id"] for p in page["items"]} == both
        events = caller.get(f"{API}/adverse-events").json()["items"]
        assert len(events) == 2
        assert caller.get(f"{API}/dosing-sessions/{two_sites.b.dosing_session.id}").is_success


def test_a_study_without_the_callers_sites_is_not_found(client_as, db, two_sites):
    other_study = make_study(db, code="PSI-1")
    make_site(db, other_study, "P01")
    coordinator = client_as(Role.COORDINATOR, [two_sites.a.site])
    assert coordinator.get(f"{API}/studies/{other_study.id}").status_code == 404
    assert coordinator.get(f"{API}/studies/{other_study.id}/sites").status_code == 404
    listed = coordinator.get(f"{API}/studies").json()["items"]
    assert [s["code"] for s in listed] == [two_sites.study.code]
    assert client_as(Role.SPONSOR).get(f"{API}/studies/{other_study.id}").status_code == 200


def test_a_participant_is_registered_only_at_the_callers_sites(client_as, db, two_sites):
    coordinator = client_as(Role.COORDINATOR, [two_sites.a.site])
    url = f"{API}/studies/{two_sites.study.id}/participants"
    body = {"subject_id": "02-050", "sex": "M", "age_years": 52, "consented_on": "2026-01-03"}

    details = []
    for site_id in (two_sites.b.site.id, uuid.uuid4()):  # another site's, and none at all
        response = coordinator.post(url, json=body | {"site_id": str(site_id)})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["site_id"]
        details.append(response.json()["detail"].replace(str(site_id), "<id>"))
    assert details[0] == details[1]
    count = select(func.count()).select_from(Participant).where(Participant.subject_id == "02-050")
    assert db.scalar(count) == 0

    own = coordinator.post(url, json=body | {"site_id": str(two_sites.a.site.id)})
    assert own.status_code == 201, own.text


def test_a_dosing_session_is_planned_only_for_a_visit_the_caller_can_see(client_as, two_sites):
    therapist = client_as(Role.THERAPIST, [two_sites.a.site])
    url = f"{API}/participants/{two_sites.a.participant.id}/dosing-sessions"
    foreign = therapist.post(url, json={"visit_id": str(two_sites.b.visits["EXP2"].id)})
    missing = therapist.post(url, json={"visit_id": str(uuid.uuid4())})
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json()["errors"][0]["message"].endswith("does not exist")
    assert missing.json()["errors"][0]["message"].endswith("does not exist")
    planned = therapist.post(url, json={"visit_id": str(two_sites.a.visits["EXP2"].id)})
    assert planned.status_code == 201, planned.text


def _reading(minutes: float = 75) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": f"2026-02-02T{8 + int(minutes // 60):02d}:{int(minutes % 60):02d}:00Z",
        "observations": [{"code": "PULSE", "value": 101, "unit": "beats/min"}],
    }


def test_a_device_posts_vitals_for_its_own_sites_sessions_and_nothing_else(
    client_as, db, two_sites
):
    tablet = client_as(Role.DEVICE, [two_sites.a.site], username="tablet-s01-3")
    own = f"{API}/dosing-sessions/{two_sites.a.dosing_session.id}"
    other = f"{API}/dosing-sessions/{two_sites.b.dosing_session.id}"

    one = tablet.post(f"{own}/vital-readings", json=_reading())
    assert one.status_code == 201, one.text
    assert one.json()["source"] == "device:tablet-s01-3"  # who posted it, when it did not say
    batch = tablet.post(f"{own}/vital-readings/batch", json={"readings": [_reading(80)]})
    assert batch.status_code == 200 and batch.json()["accepted"] == 1

    for path in ("/vital-readings", "/vital-readings/batch"):
        body = _reading() if path == "/vital-readings" else {"readings": [_reading()]}
        assert tablet.post(other + path, json=body).status_code == 404
    stored = select(func.count()).select_from(VitalReading)
    stored = stored.where(VitalReading.dosing_session_id == two_sites.b.dosing_session.id)
    assert db.scalar(stored) == 1  # the seeded reading only

    reading = two_sites.a.reading.id
    refused = [
        ("GET", f"{own}/vital-readings", None),
        ("GET", own, None),
        ("GET", f"{API}/vital-readings/{reading}", None),
        ("POST", f"{API}/vital-readings/{reading}/entered-in-error", {"reason": "artefact"}),
        ("GET", f"{API}/participants", None),
        ("GET", f"{API}/studies", None),
        ("POST", f"{own}/doses", {}),
        ("GET", f"{API}/history/participants/{two_sites.a.participant.id}", None),
    ]
    for method, url, body in refused:
        assert tablet.request(method, url, json=body).status_code == 403, (method, url)


def test_history_reads_like_the_record_it_is_the_history_of(client_as, two_sites):
    a = two_sites.a
    coordinator = client_as(Role.COORDINATOR, [a.site])
    therapist = client_as(Role.THERAPIST, [a.site])
    assert coordinator.get(f"{API}/history/participants/{a.participant.id}").status_code == 200
    assert coordinator.get(f"{API}/history/vital_readings/{a.reading.id}").status_code == 200
    # a coordinator reads no therapist note, so not its history either
    assert coordinator.get(f"{API}/history/therapist_notes/{a.note.id}").status_code == 403
    assert therapist.get(f"{API}/history/therapist_notes/{a.note.id}").status_code == 200
    # nor anything about the accounts, which are the admin's
    user_history = f"{API}/history/users/{a.therapist.id}"
    assert coordinator.get(user_history).status_code == 403
    assert client_as(Role.ADMIN).get(user_history).status_code == 200
    assert coordinator.get(f"{API}/history/nothing/{uuid.uuid4()}").status_code == 404


def test_without_credentials_nothing_but_health_answers(anonymous_client, two_sites):
    assert anonymous_client.get(f"{API}/health").status_code == 200
    response = anonymous_client.get(f"{API}/participants/{two_sites.a.participant.id}")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
