from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.models import AuditRecord
from tests.pages import walk
from tests.vitals.readings import reading


def _post(client, dosing_session, readings):
    response = client.post(
        f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings/batch",
        json={"readings": readings},
    )
    assert response.json()["accepted"] == len(readings), response.text


def _list(client, dosing_session, **params):
    response = client.get(
        f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings", params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_readings_are_listed_in_measurement_order_not_id_order(client, dosing_session):
    sent = [reading(minutes) for minutes in (90, 0, 60, 30)]
    _post(client, dosing_session, sent)
    items = _list(client, dosing_session)["items"]
    assert [r["reported"]["measured_at"] for r in items] == [
        sent[1]["measured_at"],
        sent[3]["measured_at"],
        sent[2]["measured_at"],
        sent[0]["measured_at"],
    ]


def test_the_cursor_walks_every_reading_once_even_with_equal_times(client, dosing_session):
    sent = [reading(30) for _ in range(3)] + [reading(0), reading(60)]
    _post(client, dosing_session, sent)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = _list(client, dosing_session, **params)
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(r["id"] for r in seen) == sorted(r["id"] for r in sent)
    keys = [(r["measured_at"], r["id"]) for r in seen]
    assert keys == sorted(keys)


def test_a_page_size_out_of_range_is_refused_naming_it(client, dosing_session):
    response = client.get(
        f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings", params={"limit": 0}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"


def test_a_cursor_vigil_did_not_issue_is_refused(client, dosing_session):
    response = client.get(
        f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings",
        params={"cursor": "not-a-cursor"},
    )
    assert response.status_code == 422
    assert "cursor" in response.json()["detail"]


def test_a_reading_entered_in_error_is_kept_and_audited(client, db, dosing_session):
    sent = reading(30)
    _post(client, dosing_session, [sent])
    response = client.post(
        f"/api/v1/vital-readings/{sent['id']}/entered-in-error",
        json={"reason": "cuff on the wrong arm size"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["record_status"] == "entered_in_error"
    assert response.json()["error_reason"] == "cuff on the wrong arm size"
    listed = _list(client, dosing_session)["items"]
    assert [(r["id"], r["record_status"]) for r in listed] == [(sent["id"], "entered_in_error")]

    records = list(
        db.scalars(
            select(AuditRecord)
            .where(AuditRecord.entity_type == "vital_readings", AuditRecord.entity_id == sent["id"])
            .order_by(AuditRecord.id)
        )
    )
    assert [r.action for r in records] == ["create", "entered_in_error"]
    assert records[1].reason == "cuff on the wrong arm size"
    assert records[1].after == {
        "record_status": "entered_in_error",
        "error_reason": "cuff on the wrong arm size",
    }

    again = client.post(
        f"/api/v1/vital-readings/{sent['id']}/entered-in-error", json={"reason": "once more"}
    )
    assert again.status_code == 409
    # a late replay of the same reading stays a duplicate; it does not revive the reading
    replay = client.post(f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings", json=sent)
    assert replay.status_code == 200
    assert replay.json()["record_status"] == "entered_in_error"


def test_entering_an_unknown_reading_in_error_is_404(client):
    response = client.post(
        "/api/v1/vital-readings/0190a0a0-0000-7000-8000-000000000000/entered-in-error",
        json={"reason": "does not exist"},
    )
    assert response.status_code == 404


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minutes=st.lists(st.sampled_from([0, 15, 30, 45]), min_size=1, max_size=6),
    limit=st.integers(min_value=1, max_value=4),
)
def test_any_page_size_walks_the_readings_in_measurement_order(
    client, dosing_session, minutes, limit
):
    _post(client, dosing_session, [reading(m) for m in minutes])
    url = f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings"
    everything = _list(client, dosing_session, limit=500)
    assert everything["next_cursor"] is None
    keys = [(r["measured_at"], r["id"]) for r in everything["items"]]
    assert keys == sorted(keys)
    assert walk(client, url, limit) == everything["items"]
