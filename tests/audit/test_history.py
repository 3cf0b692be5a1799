"""GET /history/{entity_type}/{entity_id}: one record's versions, a page at a time, oldest first."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.permissions import Role
from tests.factories.trial import make_participant, make_site, make_study
from tests.pages import walk

API = "/api/v1"


def test_a_records_history_is_pages_oldest_first(client_as, db):
    site = make_site(db, make_study(db))
    participant = make_participant(db, site, stage="randomised")  # create, enrol, randomise
    url = f"{API}/history/participants/{participant.id}"
    client = client_as(Role.COORDINATOR, sites=[site])  # blinded: reading the arm writes nothing

    everything = walk(client, url)
    assert everything[0]["action"] == "create"
    assert len(everything) >= 3
    assert [r["id"] for r in everything] == sorted(r["id"] for r in everything)  # UUIDv7
    for limit in (1, 2):
        assert walk(client, url, limit) == everything


def test_a_cursor_of_another_list_is_refused_naming_it(client, db):
    site = make_site(db, make_study(db))
    participant = make_participant(db, site, stage="enrolled")
    visits = client.get(f"{API}/participants/{participant.id}/visits", params={"limit": 1})
    cursor = visits.json()["next_cursor"]  # (sequence, id): not a history cursor (id)

    for sent in (cursor, "not-a-cursor", "W10"):
        response = client.get(
            f"{API}/history/participants/{participant.id}", params={"cursor": sent}
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["cursor"]
        assert "pass next_cursor from the previous page unchanged" in response.json()["detail"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cursor=st.text(max_size=40))
def test_no_cursor_is_a_500(client, db, cursor):
    response = client.get(f"{API}/audit-records", params={"cursor": cursor, "limit": 1})
    assert response.status_code in (200, 422), response.text
