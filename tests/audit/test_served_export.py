"""The audit trail export through a real server on a committed database: the export's own audit
event has committed before the body streams (the file holds it), and the file verifies."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session

from app import migrations
from app.audit.export_check import verify_export
from app.auth import tokens
from app.db import make_engine
from app.permissions import Role
from tests.conftest import BACKENDS, build_two_site_trial, make_person
from tests.live_server import live_server


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[tuple[str, str]]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.info["actor"] = "test"
        build_two_site_trial(session)
        monitor = make_person(session, "monitor-qa", Role.MEDICAL_MONITOR)
        _, token = tokens.issue(session, monitor, tokens.TokenKind.API)
        session.commit()
    engine.dispose()
    with live_server(url) as base:
        yield base, token


def test_a_served_audit_export_holds_its_own_committed_event_and_verifies(served):
    base, token = served
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(headers=headers, timeout=30) as client,
        client.stream("GET", f"{base}/audit-records/export") as response,
    ):
        assert response.status_code == 200
        lines = [line + "\n" for line in response.iter_lines() if line]

    verdict = verify_export(lines)

    assert verdict.intact, verdict.problem
    assert verdict.records > 20 and verdict.withheld > 0
    assert '"exported_by":"medical_monitor:monitor-qa"' in lines[0]
