"""A 2xx means stored: a client that is told its write succeeded finds it on its very next
request. Through a real server on a committed database (a TestClient cannot see the order of
the commit and the response), on SQLite and PostgreSQL."""

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text

from app import migrations
from app.audit.recorder import AUDIT_CHAIN_LOCK
from app.clock import utcnow
from app.db import make_engine
from app.models import VitalReading
from tests.conftest import BACKENDS
from tests.durability.world import Trial, seed_trial
from tests.live_server import live_server

ROUNDS = 100


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[tuple[str, Trial]]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    trial = seed_trial(url)
    with live_server(url) as base:
        yield base, trial


def test_a_token_from_a_login_works_on_the_next_request(served: tuple[str, Trial]):
    base, trial = served
    unknown = []
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(ROUNDS):
            login = http.post(
                "/auth/login", json={"username": trial.clinician, "password": trial.password}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            me = http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            if me.status_code != 200:
                unknown.append(me.status_code)
    assert unknown == [], f"{len(unknown)} of {ROUNDS} fresh tokens were unknown at once"


def test_a_stored_reading_is_found_on_the_next_request(served: tuple[str, Trial]):
    base, trial = served
    missing = []
    start = utcnow() - timedelta(minutes=90)
    device = {"Authorization": f"Bearer {trial.device_token}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        login = http.post(
            "/auth/login", json={"username": trial.clinician, "password": trial.password}
        )
        clinician = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for n in range(ROUNDS):
            reading_id = str(uuid.uuid4())
            posted = http.post(
                f"/dosing-sessions/{trial.dosing_session_id}/vital-readings",
                json={
                    "id": reading_id,
                    "measured_at": (start + timedelta(seconds=n)).isoformat(),
                    "observations": [{"code": "PULSE", "value": 80, "unit": "beats/min"}],
                },
                headers=device,
            )
            assert posted.status_code == 201, posted.text
            if http.get(f"/vital-readings/{reading_id}", headers=clinician).status_code != 200:
                missing.append(reading_id)
    assert missing == [], f"{len(missing)} of {ROUNDS} acknowledged readings were not found"


def test_the_answer_waits_for_the_commit(fresh_database_url):
    """PostgreSQL: while another connection holds the audit chain's lock, a post that must append
    to the chain cannot commit, so it is not answered; once the lock is free it commits and is
    answered. (Before, it answered 200 at once and committed afterwards, or never.)"""
    url = fresh_database_url("postgresql")
    migrations.upgrade(url)
    trial = seed_trial(url)
    engine = make_engine(url)
    answered: list[httpx.Response] = []
    reading = {
        "id": str(uuid.uuid4()),
        "measured_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "observations": [{"code": "PULSE", "value": 80, "unit": "beats/min"}],
    }
    try:
        with live_server(url) as base, engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": AUDIT_CHAIN_LOCK})
            post = threading.Thread(
                target=lambda: answered.append(
                    httpx.post(
                        f"{base}/dosing-sessions/{trial.dosing_session_id}/vital-readings",
                        json=reading,
                        headers={"Authorization": f"Bearer {trial.device_token}"},
                        timeout=30,
                    )
                )
            )
            post.start()
            while not holder.scalar(WAITING_FOR_THE_CHAIN, {"key": AUDIT_CHAIN_LOCK}):
                post.join(0.05)
                assert post.is_alive(), answered
            post.join(1.0)  # an answer sent before the commit would arrive in this time
            assert answered == []
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": AUDIT_CHAIN_LOCK})
            post.join(30)
            assert answered[0].status_code == 201, answered[0].text
            stored = holder.scalar(
                select(func.count()).where(VitalReading.id == uuid.UUID(reading["id"]))
            )
            assert stored == 1
    finally:
        engine.dispose()


WAITING_FOR_THE_CHAIN = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND objid = :key AND database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database())"
)


def _observation(trial: Trial, reading_id: str, pulse: float) -> dict:
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:vigil:vital-reading", "value": reading_id}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "encounter": {"reference": f"Encounter/{trial.dosing_session_id}"},
        "effectiveDateTime": (utcnow() - timedelta(minutes=5)).isoformat(),
        "valueQuantity": {"value": pulse, "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def test_a_refused_fhir_transaction_stores_none_of_its_entries(served: tuple[str, Trial]):
    """The refusal is answered by an exception handler after the route: the request's
    transaction must roll back all the same, through the real server's session."""
    base, trial = served
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _observation(trial, rid, pulse),
                "request": {"method": "POST", "url": "Observation"},
            }
            for rid, pulse in ((good, 88), (bad, 400))  # 400/min: no person has it
        ],
    }
    with httpx.Client(
        base_url=base, timeout=10, headers={"Authorization": f"Bearer {trial.device_token}"}
    ) as http:
        refused = http.post("/fhir", json=bundle)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/fhir+json")
        bundle["entry"] = bundle["entry"][:1]
        stored = http.post("/fhir", json=bundle)  # the good entry alone is new: nothing was kept
        assert stored.status_code == 200, stored.text
        assert stored.json()["entry"][0]["response"]["status"] == "201 Created"
