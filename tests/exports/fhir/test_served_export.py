"""The FHIR and SDTM exports through a real server on a committed database: the rows are read on the
export's own read-only session while the response streams, and the export's audit record is
committed by then (a TestClient on the test's transaction cannot show either)."""

import csv
import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import migrations
from app.auth import tokens
from app.db import make_engine
from app.models import AuditRecord, VitalReading
from app.permissions import Role
from tests.conftest import BACKENDS, build_two_site_trial, make_person
from tests.live_server import live_server


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[tuple[str, str, str]]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.info["actor"] = "test"
        build_two_site_trial(session)
        sponsor = make_person(session, "sponsor-qa", Role.SPONSOR)
        _, token = tokens.issue(session, sponsor, tokens.TokenKind.API)
        session.commit()
    engine.dispose()
    with live_server(url) as base:
        yield url, base, token


def test_a_served_export_streams_the_committed_study_and_is_audited(served):
    url, base, token = served
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(headers=headers, timeout=30) as client,
        client.stream(
            "GET", f"{base}/exports/fhir/Observation.ndjson", params={"study": "MAPP-T"}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/fhir+ndjson"
        observations = [json.loads(line) for line in response.iter_lines() if line]
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            stored = {str(r.id) for r in session.scalars(select(VitalReading))}
            exports = session.scalars(
                select(AuditRecord).where(AuditRecord.action == "export")
            ).all()
    finally:
        engine.dispose()
    assert {o["identifier"][0]["value"] for o in observations} == stored
    assert len(observations) == 2 * len(stored)  # the seed readings: BP panel and heart rate
    assert [(r.actor, r.after["resource_type"]) for r in exports] == [
        ("sponsor:sponsor-qa", "Observation")
    ]


def test_a_served_sdtm_dataset_streams_the_committed_study_and_is_audited(served):
    url, base, token = served
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(headers=headers, timeout=30) as client,
        client.stream("GET", f"{base}/exports/sdtm/vs.csv", params={"study": "MAPP-T"}) as response,
    ):
        assert response.status_code == 200
        rows = list(csv.DictReader(response.iter_lines()))
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            stored = {str(r.id) for r in session.scalars(select(VitalReading))}
            exports = session.scalars(
                select(AuditRecord).where(AuditRecord.action == "export_sdtm")
            ).all()
    finally:
        engine.dispose()
    assert {row["VSSPID"] for row in rows} == stored
    assert [r.actor for r in exports] == ["sponsor:sponsor-qa"]
