"""A 2xx survives a crash. A bedside tablet posts batches of readings while the server process
is killed with SIGKILL and started again, several times; the tablet resends only what was not
acknowledged, as a real one does after a 2xx (it throws its copy away). The tablet speaks
Vigil's batch endpoint, or FHIR (Bundles of blood pressure Observations to /api/v1/fhir,
transaction and batch in turn). Afterwards every
acknowledged reading is stored exactly once with its one audit record, the alerts are those the
rules engine finds in what was stored (none missing, none doubled) and the audit chain verifies.

Half of the kills land the moment an acknowledgement arrives: a server that answered before
committing loses that batch every time. The others land at random moments in the stream of
posts. On SQLite and PostgreSQL."""

import random
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import migrations
from app.alerts.evaluation import keyed, occurrence_hash
from app.audit.verify import verify_chain
from app.clock import utcnow
from app.db import make_engine
from app.models import Alert, AlertOccurrence, AuditRecord, DosingSession, VitalReading
from app.protocols.service import definition_of
from app.rules.engine import evaluate
from app.sessions.snapshot import snapshot_of
from tests.conftest import BACKENDS
from tests.durability.world import Trial, seed_trial
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

KILLS = 8  # of the Vigil tablet; the FHIR tablet's path below the mapping is the same: half
BATCH = 20
READINGS_AFTER_LAST_KILL = 60
TIME_DRIVEN = {"overdue_measurement"}  # judged by the clock too, not by the readings alone


class Tablet:
    """Readings a minute apart in measured time, one in seven dangerous; ``pending`` is what was
    sent without an acknowledgement (or not yet sent), ``acknowledged`` what the server took."""

    def __init__(self, trial: Trial, base: str) -> None:
        self.trial = trial
        self.http = httpx.Client(
            base_url=base,
            timeout=httpx.Timeout(10.0, connect=2.0),
            headers={"Authorization": f"Bearer {trial.device_token}"},
        )
        self.start = utcnow() - timedelta(minutes=110)
        self.made = 0
        self.pending: list[dict[str, Any]] = []
        self.acknowledged: dict[str, dict[str, Any]] = {}

    def _new(self) -> dict[str, Any]:
        self.made += 1
        dangerous = self.made % 7 == 0
        return {
            "id": str(uuid.uuid4()),
            "measured_at": (self.start + timedelta(seconds=6 * self.made)).isoformat(),
            "observations": [
                {"code": "SYSBP", "value": 186 if dangerous else 128, "unit": "mmHg"},
                {"code": "DIABP", "value": 104 if dangerous else 82, "unit": "mmHg"},
                {"code": "PULSE", "value": 88, "unit": "beats/min"},
                {"code": "TEMP", "value": 37.0, "unit": "C"},
            ],
        }

    def post(self) -> bool:
        """Send the next batch (what is pending first); whether it was acknowledged."""
        while len(self.pending) < BATCH:
            self.pending.append(self._new())
        batch = self.pending[:BATCH]
        try:
            response = self.http.post(
                f"/dosing-sessions/{self.trial.dosing_session_id}/vital-readings/batch",
                json={"readings": batch},
            )
        except httpx.TransportError:
            return False
        if response.status_code >= 500:
            return False
        assert response.status_code == 200, response.text
        outcome = response.json()
        refused = [r for r in outcome["results"] if r["status"] == "rejected"]
        assert outcome["rejected"] == 0, refused  # their problems, whole
        for reading, result in zip(batch, outcome["results"], strict=True):
            assert result["id"] == reading["id"] and result["status"] in ("accepted", "duplicate")
            self.acknowledged[reading["id"]] = reading
        del self.pending[:BATCH]
        return True

    def drain(self) -> None:
        while self.pending:
            assert self.post(), "the server refused a batch after its last restart"


class FhirTablet(Tablet):
    """The same readings' blood pressure as FHIR R4 Observations (the 85354-9 panel), one
    reading each, in Bundles: a transaction, then a batch, in turn."""

    posts = 0

    def _observation(self, reading: dict[str, Any]) -> dict[str, Any]:
        loinc = {"SYSBP": "8480-6", "DIABP": "8462-4"}
        return {
            "resourceType": "Observation",
            "identifier": [{"system": "urn:vigil:vital-reading", "value": reading["id"]}],
            "status": "final",
            "category": [{"coding": [{"system": FHIR_CATEGORY, "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "encounter": {"reference": f"Encounter/{self.trial.dosing_session_id}"},
            "effectiveDateTime": reading["measured_at"],
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": loinc[o["code"]]}]},
                    "valueQuantity": {
                        "value": o["value"],
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                }
                for o in reading["observations"]
                if o["code"] in loinc
            ],
        }

    def post(self) -> bool:
        while len(self.pending) < BATCH:
            self.pending.append(self._new())
        batch = self.pending[:BATCH]
        self.posts += 1
        kind = "transaction" if self.posts % 2 else "batch"
        bundle = {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [
                {
                    "resource": self._observation(reading),
                    "request": {"method": "POST", "url": "Observation"},
                }
                for reading in batch
            ],
        }
        try:
            response = self.http.post("/fhir", json=bundle)
        except httpx.TransportError:
            return False
        if response.status_code >= 500:
            return False
        assert response.status_code == 200, response.text
        entries = response.json()["entry"]
        for reading, entry in zip(batch, entries, strict=True):
            assert entry["response"]["status"] in ("201 Created", "200 OK"), entry
            assert entry["resource"]["identifier"][0]["value"] == reading["id"]
            self.acknowledged[reading["id"]] = reading
        del self.pending[:BATCH]
        return True


FHIR_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
TABLETS = {"vigil": Tablet, "fhir": FhirTablet}


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[str]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    yield url


def _run(server: ServerProcess, tablet: Tablet, seed: int, kills: int) -> None:
    chance = random.Random(seed)
    server.start()
    for kill in range(kills):
        if kill % 2 == 0:
            while not tablet.post():
                pass
            server.kill()  # at once: the acknowledgement has just arrived
        else:
            timer = threading.Timer(chance.uniform(0.05, 0.6), server.kill)
            timer.start()
            while timer.is_alive():
                tablet.post()
            timer.join()
        server.start()
    for _ in range(READINGS_AFTER_LAST_KILL // BATCH):
        assert tablet.post()
    tablet.drain()
    server.stop()


def _expected_occurrences(session: Session, dosing: DosingSession) -> dict[str, set[str]]:
    """What the engine finds in the stored session, judged whole: occurrence hashes by alert key,
    for the rules judged by the readings alone."""
    snapshot = snapshot_of(session, dosing, utcnow())
    findings = evaluate(definition_of(session, dosing.protocol_version_id), snapshot)
    expected: dict[str, set[str]] = defaultdict(set)
    for found in keyed(findings):
        if found.finding.kind not in TIME_DRIVEN:
            expected[found.dedup_key].add(occurrence_hash(found.occurrence_key))
    return expected


@pytest.mark.parametrize("speaks", sorted(TABLETS))
def test_every_acknowledged_reading_survives_kills_exactly_once(
    database: str, tmp_path: Path, speaks: str
) -> None:
    trial = seed_trial(database)
    server = ServerProcess(database, tmp_path / "server.log")
    tablet = TABLETS[speaks](trial, server.base)
    try:
        _run(server, tablet, seed=KILLS, kills=KILLS if speaks == "vigil" else KILLS // 2)
    finally:
        server.stop()
        tablet.http.close()
    assert server.starts == (KILLS if speaks == "vigil" else KILLS // 2) + 1

    engine = make_engine(database)
    try:
        with Session(engine) as session:
            stored = {str(i) for i in session.scalars(select(VitalReading.id))}
            missing = set(tablet.acknowledged) - stored
            assert not missing, f"{len(missing)} acknowledged readings were lost"
            assert stored == set(tablet.acknowledged)  # nothing stored that was never sent

            created = Counter(
                session.scalars(
                    select(AuditRecord.entity_id).where(
                        AuditRecord.entity_type == "vital_readings",
                        AuditRecord.action == "create",
                    )
                )
            )
            assert set(created) == stored and set(created.values()) == {1}

            dosing = session.get_one(DosingSession, trial.dosing_session_id)
            expected = _expected_occurrences(session, dosing)
            assert expected, "the dangerous readings raised no alert to check"
            alerts = [
                alert for alert in session.scalars(select(Alert)) if alert.kind not in TIME_DRIVEN
            ]
            by_key = Counter(alert.dedup_key for alert in alerts)
            assert by_key == Counter(set(expected)), "alerts missing or doubled"
            for alert in alerts:
                remembered = set(
                    session.scalars(
                        select(AlertOccurrence.occurrence_hash).where(
                            AlertOccurrence.alert_id == alert.id
                        )
                    )
                )
                assert remembered == expected[alert.dedup_key], alert.dedup_key
                assert alert.occurrences == len(expected[alert.dedup_key]), alert.dedup_key

            result = verify_chain(session)
            assert result.intact, result.broken
            assert result.records_checked == session.scalar(
                select(func.count()).select_from(AuditRecord)
            )
    finally:
        engine.dispose()
