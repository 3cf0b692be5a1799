"""FHIR bulk export of Observations: resources/s and peak RSS, at two study sizes.

On a scratch SQLite database holding the demo study (app/demo/seed.py), adds --readings vital
readings (blood pressure, pulse, temperature, SpO2: four Observations each) to the demo's dosing
session in progress, written with one multi-row INSERT per 5,000 readings: a bulk path that
leaves no audit records (the export reads no audit record, so its cost is the same). Then
streams the study's Observation.ndjson in-process (app/exports/fhir/stream.py and the endpoint's
line encoder) into a byte counter, in a child process per size so each peak RSS is its own.
Prints the figures; the last line is one JSON object.
Run: `.venv/bin/python bench/fhir_export.py [--readings 100000 400000]`.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app import listeners, migrations
from app.auth.principal import Principal
from app.db import make_engine, make_reader_engine
from app.demo.seed import seed_demo
from app.exports.fhir.endpoints import ndjson_lines
from app.exports.fhir.stream import ResourceType, study_by_code, study_resources
from app.ids import new_id
from app.models import DosingSession, Participant, Study, VitalReading
from app.permissions import Role


def _load(url: str, readings: int) -> str:
    migrations.upgrade(url)
    listeners.install()
    engine = make_engine(url)
    with Session(engine) as session:
        session.info["actor"] = "bench"
        summary = seed_demo(session)
        session.commit()
        study = session.scalars(select(Study).where(Study.code == summary.study_code)).one()
        dosing_session_id = session.scalars(
            select(DosingSession.id)
            .join(Participant, Participant.id == DosingSession.participant_id)
            .where(Participant.study_id == study.id)
        ).first()
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    with engine.begin() as connection:
        for first in range(0, readings, 5000):
            rows = []
            for n in range(first, min(first + 5000, readings)):
                at = start + timedelta(seconds=n)
                rows.append(
                    {
                        "id": new_id(),
                        "dosing_session_id": dosing_session_id,
                        "measured_at": at,
                        "received_at": at,
                        "source": "bench",
                        "sysbp_mmhg": 120.0 + n % 40,
                        "diabp_mmhg": 80.0 + n % 20,
                        "pulse_bpm": 70.0 + n % 30,
                        "temp_c": 36.5,
                        "spo2_pct": 98.0,
                        "reported": {},
                        "record_status": "valid",
                    }
                )
            connection.execute(insert(VitalReading), rows)
    engine.dispose()
    return summary.study_code


def _export(url: str, code: str) -> None:
    """In a child process: stream Observation.ndjson and print one JSON line of figures."""
    engine = make_reader_engine(url)
    sponsor = Principal(uuid.uuid4(), "bench", "Bench", Role.SPONSOR, frozenset(), uuid.uuid4())
    with Session(engine) as session:
        study = study_by_code(session, code)
        assert study is not None
        began = time.perf_counter()
        lines = size = 0
        for line in ndjson_lines(
            study_resources(session, study, ResourceType.OBSERVATION, sponsor)
        ):
            lines += 1
            size += len(line)
        seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"resources": lines, "bytes": size, "seconds": seconds, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--child", nargs=2, metavar=("URL", "STUDY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _export(*args.child)
        return
    results = []
    for readings in args.readings:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite:///{Path(scratch) / 'vigil.db'}"
            code = _load(url, readings)
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child", url, code],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            figures = json.loads(out)
            rate = figures["resources"] / figures["seconds"]
            print(
                f"{readings:>9,} readings: {figures['resources']:,} Observations in "
                f"{figures['seconds']:.1f} s ({rate:,.0f}/s), peak RSS {figures['peak_mb']:.0f} MB"
            )
            results.append({"readings": readings, "observations_per_s": round(rate), **figures})
    print(json.dumps({"fhir_observation_export": results}))


if __name__ == "__main__":
    main()
