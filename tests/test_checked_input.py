"""Text a request may carry (app/checked_input.py): control characters, lone surrogates and
duplicate JSON keys are refused with a 422 naming the field, the same on both databases
(PostgreSQL could not store a NUL and answered 500; SQLite stored it), and nothing is stored."""

import json
import uuid

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from app.checked_input import CheckedRoute, decode_json, text_problem
from app.models import AuditRecord, TherapistNote, VitalReading
from tests.vitals.readings import reading

API = "/api/v1"


def _raw(client, method: str, url: str, body: str):
    """Send ``body`` as it is written: JSON with duplicate keys or escapes of its own."""
    return client.request(
        method, url, content=body.encode(), headers={"content-type": "application/json"}
    )


def _fields(response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


def _audit_count(db) -> int:
    return db.scalar(select(func.count()).select_from(AuditRecord))


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x00\x7f", "\ud800", "\udfff"])
def test_a_note_with_a_control_character_or_lone_surrogate_is_refused(client, db, two_sites, bad):
    a = two_sites.a
    before = _audit_count(db)
    body = {"text": f"calm {bad} throughout", "written_at": "2026-02-02T17:00:00Z"}
    body["author_id"] = str(a.therapist.id)
    response = _raw(
        client, "POST", f"{API}/participants/{a.participant.id}/notes", json.dumps(body)
    )
    assert _fields(response) == ["text"]
    assert "character 5" in response.json()["detail"]
    assert db.scalar(select(func.count()).select_from(TherapistNote)) == 2  # the two seeded
    assert _audit_count(db) == before


def test_tab_line_feed_and_carriage_return_are_text(client, db, two_sites):
    a = two_sites.a
    text = "line one\r\n\tline two\nline three"
    response = client.post(
        f"{API}/participants/{a.participant.id}/notes",
        json={"text": text, "written_at": "2026-02-02T17:00:00Z", "author_id": str(a.therapist.id)},
    )
    assert response.status_code == 201, response.text
    assert db.get(TherapistNote, uuid.UUID(response.json()["id"])).text == text


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/adverse-events", {"verbatim_term": "Head\x00ache"}, "verbatim_term"),
        ("PATCH", "/adverse-event", {"verbatim_term": "x\x00", "reason": "typo"}, "verbatim_term"),
        ("PATCH", "/note", {"text": "x", "reason": "typo\x00"}, "reason"),
        ("POST", "/note/entered-in-error", {"reason": "wrong\x00participant"}, "reason"),
        ("POST", "/adverse-event/entered-in-error", {"reason": "dup\x00"}, "reason"),
        ("POST", "/reading/entered-in-error", {"reason": "probe \x00 off"}, "reason"),
        ("POST", "/dose/entered-in-error", {"reason": "\x00wrong kit"}, "reason"),
        ("POST", "/assessment/entered-in-error", {"reason": "dup\x01"}, "reason"),
    ],
)
def test_every_text_field_refuses_a_nul(client, db, two_sites, method, path, body, field):
    a = two_sites.a
    urls = {
        "/adverse-events": f"/participants/{a.participant.id}/adverse-events",
        "/adverse-event": f"/adverse-events/{a.adverse_event.id}",
        "/note": f"/notes/{a.note.id}",
        "/reading": f"/vital-readings/{a.reading.id}",
        "/dose": f"/doses/{a.dose.id}",
        "/assessment": f"/assessments/{a.assessment.id}",
        "/adverse-event/entered-in-error": f"/adverse-events/{a.adverse_event.id}/entered-in-error",
    }
    prefix, _, rest = path.partition("/entered")
    url = urls.get(path) or urls[prefix] + ("/entered" + rest if rest else "")
    before = _audit_count(db)
    response = client.request(method, f"{API}{url}", json=body)
    assert field in _fields(response)
    assert _audit_count(db) == before


def test_a_reading_with_a_nul_in_its_source_is_refused(client, db, two_sites):
    session = two_sites.a.dosing_session
    sent = reading(source="tablet\x00S01")
    response = client.post(f"{API}/dosing-sessions/{session.id}/vital-readings", json=sent)
    assert _fields(response) == ["source"]
    assert db.get(VitalReading, uuid.UUID(sent["id"])) is None


def test_a_sign_in_with_a_nul_in_the_username_is_refused_not_a_500(anonymous_client):
    response = anonymous_client.post(
        f"{API}/auth/login", json={"username": "casey\x00", "password": "any password at all"}
    )
    assert _fields(response) == ["username"]


@pytest.mark.parametrize("query", ["actor=a%00", "actor=%1F", "act%00or=x"])
def test_a_query_parameter_with_a_control_character_is_refused(client, query):
    response = client.get(f"{API}/audit-records?{query}")
    fields = _fields(response)
    assert fields == ["actor"] if query.startswith("actor") else fields == ["act\\u0000or"]


def test_a_path_parameter_with_a_nul_is_refused(client, two_sites):
    participant = two_sites.a.participant
    response = client.get(f"{API}/history/participants%00/{participant.id}")
    assert _fields(response) == ["entity_type"]


def test_a_duplicate_key_is_refused_naming_it(client, db, two_sites):
    a = two_sites.a
    body = (
        f'{{"text": "first", "text": "second", "written_at": "2026-02-02T17:00:00Z", '
        f'"author_id": "{a.therapist.id}"}}'
    )
    response = _raw(client, "POST", f"{API}/participants/{a.participant.id}/notes", body)
    assert _fields(response) == ["text"]
    assert "given twice" in response.json()["detail"]
    assert db.scalar(select(func.count()).select_from(TherapistNote)) == 2


def test_a_duplicate_key_deep_in_a_body_is_named_by_its_path(client, two_sites):
    session = two_sites.a.dosing_session
    one = reading()
    body = json.dumps(one).replace('"code": "SYSBP"', '"code": "SYSBP", "code": "PULSE"')
    response = _raw(client, "POST", f"{API}/dosing-sessions/{session.id}/vital-readings", body)
    assert _fields(response) == ["observations.0.code"]


def test_a_batch_refuses_only_the_readings_that_hold_refused_text(client, db, two_sites):
    session = two_sites.a.dosing_session
    good, nul, twice, surrogate_id = (reading(minutes=60 + i) for i in range(4))
    nul["source"] = "tablet\x00"
    readings = [json.dumps(r) for r in (good, nul, twice, surrogate_id)]
    readings[2] = readings[2].replace('"source":', '"source": "a", "source":')
    readings[3] = readings[3].replace(surrogate_id["id"], "\\ud800")
    body = '{"readings": [' + ", ".join(readings) + "]}"
    response = _raw(
        client, "POST", f"{API}/dosing-sessions/{session.id}/vital-readings/batch", body
    )
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert (outcome["accepted"], outcome["rejected"]) == (1, 3)
    results = outcome["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected"]
    assert [r["id"] for r in results] == [good["id"], nul["id"], twice["id"], None]
    assert [[e["field"] for e in r["problem"]["errors"]] for r in results[1:]] == [
        ["source"],
        ["source"],
        ["id"],
    ]
    assert db.get(VitalReading, uuid.UUID(good["id"])) is not None
    assert db.get(VitalReading, uuid.UUID(nul["id"])) is None
    assert db.get(VitalReading, uuid.UUID(twice["id"])) is None


def test_a_batch_with_a_duplicate_key_outside_its_readings_is_refused_whole(client, db, two_sites):
    session = two_sites.a.dosing_session
    first, second = reading(minutes=61), reading(minutes=62)
    body = f'{{"readings": [{json.dumps(first)}], "readings": [{json.dumps(second)}]}}'
    response = _raw(
        client, "POST", f"{API}/dosing-sessions/{session.id}/vital-readings/batch", body
    )
    assert _fields(response) == ["readings"]
    assert db.get(VitalReading, uuid.UUID(first["id"])) is None
    assert db.get(VitalReading, uuid.UUID(second["id"])) is None


def test_every_api_route_checks_its_input(application):
    routes = [c.route for c in iter_route_contexts(application.routes)]
    api = [r for r in routes if isinstance(r, APIRoute)]
    assert len(api) > 50 and all(isinstance(r, CheckedRoute) for r in api)
    assert {r.path for r in routes} - {r.path for r in api} <= {
        "/docs",
        "/redoc",
        "/api/v1/openapi.json",
        "/docs/oauth2-redirect",
        "/docs/assets",  # the docs pages' scripts and styles (static files)
        "/static",  # the web client's scripts, styles and vendored files
        "/metrics",  # Prometheus' scrape: no body, no query, only an optional bearer token
    }


def test_keys_are_checked_and_named_escaped():
    value, refusals = decode_json(b'{"a\\u0000b": 1, "ok": {"x": [1, "\\u0001"]}}')
    assert value == {"a\x00b": 1, "ok": {"x": [1, "\x01"]}}
    assert [(r.loc, r.message.split(";")[0]) for r in refusals] == [
        (("a\\u0000b",), "the key holds the control character U+0000 at character 1"),
        (("ok", "x", 1), "holds the control character U+0001 at character 0"),
    ]


def test_what_is_text():
    assert text_problem("tab\tline\nreturn\r, accents é, emoji 🫀, DEL \x7f, C1 \x85") is None
    assert "U+0000" in (text_problem("\x00") or "")
    assert "surrogate" in (text_problem("\udc00") or "")
