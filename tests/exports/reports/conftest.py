"""A dosing session with something on every line of its report: site S01's session of the
two-site trial (initial dose at minute 0 = T0+30 min) with readings every 30 minutes, one of
them entered in error, a supplemental dose at minute 120, and its critical alert (raised at
minute 30) acknowledged at minute 45 and resolved at minute 70."""

import uuid
from datetime import timedelta
from types import SimpleNamespace
from unittest.mock import patch

import pytest
from sqlalchemy import select

from app.alerts import service as alerts
from app.alerts.evaluation import Judgment
from app.dosing import service as dosing
from app.models import Dose, VitalReading
from app.permissions import Role
from app.vitals import service as vitals
from tests.conftest import T0, make_person
from tests.factories.alerts import PinnedClock

DOSED = T0 + timedelta(minutes=30)  # minute 0 of the report
# (minutes since the initial dose, SBP, DBP, pulse, temperature, SpO2)
READINGS = [
    (-20, 118, 76, 72, 36.6, 98),
    (60, 152, 94, 101, 37.2, 97),
    (90, 158, 97, 106, 37.5, 96),
    (150, 141, 88, 95, 37.4, 97),
    (180, 132, 84, 88, 37.1, 98),
]
ERROR_AT = 90  # the reading at this minute is entered in error


def _reading(minute: float, sbp: float, dbp: float, hr: float, temp: float, spo2: float) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": (DOSED + timedelta(minutes=minute)).isoformat(),
        "observations": [
            {"code": "SYSBP", "value": sbp, "unit": "mmHg"},
            {"code": "DIABP", "value": dbp, "unit": "mmHg"},
            {"code": "PULSE", "value": hr, "unit": "beats/min"},
            {"code": "TEMP", "value": temp, "unit": "C"},
            {"code": "OXYSAT", "value": spo2, "unit": "%"},
        ],
    }


@pytest.fixture
def reported(db, two_sites, monkeypatch) -> SimpleNamespace:
    a = two_sites.a
    ds = a.dosing_session
    with patch.object(vitals.evaluation, "judge_session", return_value=Judgment([], [], [])):
        vitals.ingest_batch(db, ds, [_reading(*row) for row in READINGS], "test")
    wrong = db.scalars(
        select(VitalReading).where(
            VitalReading.dosing_session_id == ds.id,
            VitalReading.measured_at == DOSED + timedelta(minutes=ERROR_AT),
        )
    ).one()
    vitals.enter_in_error(db, wrong, "Recorded against the wrong participant")
    db.add(
        Dose(
            dosing_session_id=ds.id,
            kind="supplemental",
            amount_mg=40,
            administered_at=DOSED + timedelta(minutes=120),
        )
    )
    dosing.attest_therapists(
        db, ds, a.therapist.id, a.co_therapist.id, T0, "both in the room at the start"
    )
    clinician = make_person(db, "clinician-s01", Role.CLINICIAN, [a.site])
    pinned = PinnedClock(monkeypatch, DOSED + timedelta(minutes=45))
    alerts.acknowledge(db, a.alert, clinician.id, "Seen; rechecking BP in five minutes")
    pinned.at(DOSED + timedelta(minutes=70))
    alerts.resolve(db, a.alert, clinician.id, "BP under 160 on recheck, participant calm")
    pinned.at(DOSED + timedelta(minutes=200))
    db.flush()
    stored = db.scalars(
        select(VitalReading)
        .where(VitalReading.dosing_session_id == ds.id, VitalReading.record_status == "valid")
        .order_by(VitalReading.measured_at)
    ).all()
    return SimpleNamespace(trial=two_sites, site=a, session=ds, clinician=clinician, stored=stored)
