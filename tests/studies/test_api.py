from tests.factories.trial import load_protocol


def test_study_needs_a_loaded_protocol(client):
    response = client.post(
        "/api/v1/studies", json={"code": "X1", "name": "X", "protocol_key": "nope"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "vigil protocol load" in response.json()["detail"]


def test_create_study_and_sites(client, db):
    load_protocol(db)
    study = client.post(
        "/api/v1/studies",
        json={"code": "MAPP-X", "name": "Test", "protocol_key": "mdma-ptsd-phase3"},
    )
    assert study.status_code == 201, study.text
    study_id = study.json()["id"]
    site = client.post(
        f"/api/v1/studies/{study_id}/sites",
        json={"code": "S01", "name": "Boulder", "timezone": "America/Denver"},
    )
    assert site.status_code == 201
    again = client.post(f"/api/v1/studies/{study_id}/sites", json={"code": "S01", "name": "B"})
    assert again.status_code == 409
    bad_tz = client.post(
        f"/api/v1/studies/{study_id}/sites",
        json={"code": "S02", "name": "B", "timezone": "Mars/Olympus"},
    )
    assert bad_tz.status_code == 422
    assert "Mars/Olympus" in bad_tz.json()["detail"]
    listed = client.get(f"/api/v1/studies/{study_id}/sites").json()
    assert [s["code"] for s in listed["items"]] == ["S01"]


def test_protocol_versions_are_listed_with_their_hash(client, db):
    version = load_protocol(db)
    page = client.get("/api/v1/protocol-versions").json()
    assert [v["sha256"] for v in page["items"]] == [version.sha256]
    detail = client.get(f"/api/v1/protocol-versions/{version.id}").json()
    assert detail["definition"]["protocol"]["id"] == "mdma-ptsd-phase3"


def test_cursor_pagination_walks_every_item_once(client, db):
    load_protocol(db)
    for i in range(7):
        client.post(
            "/api/v1/studies",
            json={"code": f"ST{i}", "name": "S", "protocol_key": "mdma-ptsd-phase3"},
        )
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/studies", params=params).json()
        seen += [s["code"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"ST{i}" for i in range(7)]
    bogus = client.get("/api/v1/studies", params={"cursor": "not-a-cursor!"})
    assert bogus.status_code == 422


def test_unknown_route_is_problem_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
