"""The audit trail export (GET /api/v1/audit-records/export): an auditor verifies it offline,
one changed byte anywhere is caught and named, and values the reader is not entitled to are
withheld yet still verify through their commitments."""

import json
from collections.abc import Iterator
from contextlib import nullcontext

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app.audit.export_check import verify_export
from app.audit_api.export_endpoints import trail_readers
from app.permissions import Role
from tests.conftest import TEST_PASSWORD

API = "/api/v1"


@pytest.fixture
def trail_api(db: Session, api: FastAPI) -> Iterator[FastAPI]:
    """The export reads the trail in the test's transaction (the request's has committed to it)."""
    api.dependency_overrides[trail_readers] = lambda: lambda: nullcontext(db)
    yield api


@pytest.fixture
def trial(db, two_sites, client_as, trail_api):
    """The two-site trial with a therapist's note signed (review) by the site's clinician."""
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])
    body = {"meaning": "review", "username": clinician.user.username, "password": TEST_PASSWORD}
    signed = clinician.post(f"{API}/notes/{two_sites.a.note.id}/signatures", json=body)
    assert signed.status_code == 201, signed.text
    return two_sites


def export(client, **params) -> bytes:
    response = client.get(f"{API}/audit-records/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return response.content


def lines_of(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines()]


def test_an_exported_trail_verifies_offline_with_its_signatures_and_names(trial, client_as):
    monitor = client_as(Role.MEDICAL_MONITOR)
    body = export(monitor)

    verdict = verify_export(body.splitlines(keepends=True))

    assert verdict.intact, verdict.problem
    lines = lines_of(body)
    head, records = lines[0], [line for line in lines if line["type"] == "record"]
    signatures = [line for line in lines if line["type"] == "signature"]
    assert verdict.records == head["records"] == len(records) > 20
    assert [r["sequence"] for r in records] == list(range(1, len(records) + 1))
    assert head["head"] == {
        "sequence": records[-1]["sequence"],
        "record_hash": records[-1]["record_hash"],
    }
    # who pulled it is in the trail itself, as its own audit event
    assert head["exported_by"] == f"medical_monitor:{monitor.user.username}"
    [event] = [r for r in records if r["id"] == head["event"]]
    assert event["action"] == "export_audit_trail"
    assert event["after"]["withheld"] == ["arms", "client_address", "note_text"]
    # Part 11: the actors' names
    actor = f"medical_monitor:{monitor.user.username}"
    assert head["actors"][actor] == monitor.user.display_name
    [signature] = signatures
    assert signature["meaning"] == "review" and signature["status"] == "valid"
    assert verdict.signatures == 1


def test_withheld_values_are_left_out_and_verify_by_their_commitments(trial, client_as):
    body = export(client_as(Role.MEDICAL_MONITOR))

    records = [line for line in lines_of(body) if line["type"] == "record"]
    note_text = trial.a.note.text
    assert note_text.encode() not in body
    for record in records:
        for side in ("before", "after"):
            assert not {"arm_code", "kit_number"} & set(record[side] or {})
        assert record["client_address"] is None
        assert record["salts"] == {}
    withheld = {path for r in records for path in r["withheld"]}
    assert {"after.arm_code", "after.text"} <= withheld
    assert verify_export(body.splitlines(keepends=True)).withheld > 0


def test_an_entitled_reader_gets_the_value_and_its_salt(trial, client_as):
    body = export(client_as(Role.MEDICAL_MONITOR), reveal="note_text")

    [note] = [
        line
        for line in lines_of(body)
        if line["type"] == "record"
        and line["entity_type"] == "therapist_notes"
        and line["action"] == "create"
        and line["entity_id"] == str(trial.a.note.id)
    ]
    assert note["after"]["text"] == trial.a.note.text
    assert set(note["salts"]) == {"after.text"}
    assert "after.text" not in note["withheld"]
    assert verify_export(body.splitlines(keepends=True)).intact


@pytest.mark.parametrize(
    ("role", "reveal"),
    [
        (Role.SPONSOR, "note_text"),
        (Role.MEDICAL_MONITOR, "client_address"),
        (Role.MEDICAL_MONITOR, "arms"),
        (Role.ADMIN, "arms"),
    ],
)
def test_revealing_what_the_role_is_not_entitled_to_is_refused(trial, client_as, role, reveal):
    response = client_as(role).get(f"{API}/audit-records/export", params={"reveal": reveal})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert f"may not reveal {reveal}" in response.json()["detail"]


def test_roles_without_the_whole_trail_get_no_export(trial, client_as):
    for role in (Role.CLINICIAN, Role.COORDINATOR, Role.PHARMACIST, Role.THERAPIST):
        response = client_as(role, [trial.a.site]).get(f"{API}/audit-records/export")
        assert response.status_code == 403, role


@pytest.fixture
def exported(trial, client_as) -> bytes:
    return export(client_as(Role.ADMIN), reveal="client_address")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(where=st.floats(0, 1, exclude_max=True), shift=st.integers(1, 255))
def test_changing_any_one_byte_is_caught_and_named(exported, where, shift):
    position = int(where * len(exported))
    replacement = (exported[position] + shift) % 256
    tampered = exported[:position] + bytes([replacement]) + exported[position + 1 :]

    verdict = verify_export(tampered.splitlines(keepends=True))

    assert not verdict.intact
    line_number = exported[:position].count(b"\n") + 1
    line = exported.splitlines()[line_number - 1]
    problem = verdict.problem or ""
    if line_number == 1:
        assert "header" in problem or "line 1" in problem
    elif b'"type":"record"' in line:
        record = json.loads(line)
        rest = exported.splitlines()[line_number:]
        following = json.loads(rest[0]) if rest else {}
        # named: the record changed, or the one after it (whose link to it no longer holds)
        names = (
            f"#{record['sequence']}",
            f"#{record['sequence'] + 1}",
            record["id"],
            following.get("id", "-"),
            f"line {line_number}",
        )
        assert any(name in problem for name in names), problem
    else:
        assert "signature" in problem or f"line {line_number}" in problem, problem


def test_removing_a_record_or_reordering_lines_is_caught(exported):
    lines = exported.splitlines(keepends=True)
    removed = verify_export(lines[:5] + lines[6:])
    assert not removed.intact and "#5" in (removed.problem or "")
    swapped = verify_export([lines[0], lines[2], lines[1], *lines[3:]])
    assert not swapped.intact
    truncated = verify_export(lines[:-3])
    assert not truncated.intact
