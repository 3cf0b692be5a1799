"""SDTM export speed on a study of about a million vital readings: VS rows/s and peak RSS per
format, and the whole package, at two study sizes, on SQLite or PostgreSQL.

For each size (``--readings``, default 200,000 and 1,000,000) the bench makes a scratch database
(a temporary SQLite file, or a uniquely named PostgreSQL database on the server of ``--postgres``,
dropped at the end), migrates it, seeds the demo study (``vigil demo``), then loads the readings
into the demo's dosing sessions through a bulk path: executemany inserts, 10,000 readings per
transaction, each reading with its audit record (action ``create``, its column snapshot) chained
by the real chain functions (``app.audit.chain.link``), so the trail verifies (``--verify`` checks
it after loading). Readings hold four to six tests (blood pressure, pulse and temperature; SpO2
and respiratory rate in some), a few in Fahrenheit, some entered in error, taken at times around
the protocol's due times over several months (DST changes included).

Then it exports VS as CSV, Dataset-JSON, NDJSON and XPT (split), and writes the whole package
(every dataset in every format, and the ZIP form), each in a process of its own so that its peak
RSS (``ru_maxrss``) is its own. A VS row is one test of one reading. The last line printed is one
JSON object. Run: `.venv/bin/python bench/exports_package.py [--readings 200000 1000000]
[--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--verify]`.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FORMATS = ("csv", "json", "ndjson", "xpt")
PACKAGES = ("package", "package.zip")
PER_TRANSACTION = 10_000
ACTOR = "bench-loader"
STUDY = "DEMO-MAPP"


def _reading(number: int, session: tuple[Any, datetime | None], start: datetime) -> dict[str, Any]:
    """Reading ``number`` of a dosing session: every 15 minutes around its dose (most answer a
    due time), one in 50 weeks or months earlier (unscheduled, across DST changes)."""
    dosing_session_id, dosed_at = session
    base = dosed_at or start
    at = base + timedelta(minutes=-30 + (number // 7) % 40 * 15, seconds=number % 120)
    if number % 50 == 0:
        at -= timedelta(days=number % 211, minutes=number % 997)
    observations = [
        {"code": "SYSBP", "value": 110 + number % 50, "unit": "mmHg"},
        {"code": "DIABP", "value": 70 + number % 25, "unit": "mmHg"},
        {"code": "PULSE", "value": 60 + number % 45, "unit": "beats/min"},
    ]
    fahrenheit = number % 40 == 0
    temp_c = round(36.2 + (number % 16) / 10, 1)
    if fahrenheit:
        temp_f = round(temp_c * 9 / 5 + 32, 1)
        observations.append({"code": "TEMP", "value": temp_f, "unit": "[degF]"})
        temp_c = round((temp_f - 32) * 5 / 9, 1)
    else:
        observations.append({"code": "TEMP", "value": temp_c, "unit": "Cel"})
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "dosing_session_id": dosing_session_id,
        "measured_at": at,
        "received_at": at + timedelta(seconds=3),
        "source": "bench",
        "sysbp_mmhg": float(observations[0]["value"]),
        "diabp_mmhg": float(observations[1]["value"]),
        "pulse_bpm": float(observations[2]["value"]),
        "resp_rate_per_min": None,
        "temp_c": temp_c,
        "spo2_pct": None,
        "supplemental_oxygen": None,
        "new_confusion": None,
        "record_status": "entered_in_error" if number % 97 == 0 else "valid",
        "error_reason": "Recorded against the wrong participant" if number % 97 == 0 else None,
    }
    if number % 3 == 0:
        row["spo2_pct"] = float(94 + number % 6)
        observations.append({"code": "SPO2", "value": 94 + number % 6, "unit": "%"})
    if number % 5 == 0:
        row["resp_rate_per_min"] = float(12 + number % 8)
        observations.append({"code": "RESP", "value": 12 + number % 8, "unit": "/min"})
    row["reported"] = {"measured_at": at.isoformat(), "observations": observations}
    return row


def _load(url: str, readings: int) -> dict[str, Any]:
    """Migrate, seed the demo, bulk-load ``readings`` readings with chained audit records."""
    from sqlalchemy import func, insert, inspect, select
    from sqlalchemy.orm import Session

    from app import listeners, migrations
    from app.audit.chain import GENESIS_HASH, link
    from app.audit.values import jsonable
    from app.db import make_engine
    from app.demo.seed import seed_demo
    from app.ids import new_id
    from app.models import AuditRecord, Dose, DosingSession, Participant, Study, VitalReading

    began = time.perf_counter()
    migrations.upgrade(url)
    listeners.install()
    engine = make_engine(url)
    with Session(engine) as session:
        session.info["actor"] = ACTOR
        seed_demo(session)
        session.commit()
        sessions = session.execute(
            select(DosingSession.id, func.min(Dose.administered_at))
            .join(Participant, Participant.id == DosingSession.participant_id)
            .join(Study, Study.id == Participant.study_id)
            .outerjoin(
                Dose, (Dose.dosing_session_id == DosingSession.id) & (Dose.kind == "initial")
            )
            .where(Study.code == STUDY)
            .group_by(DosingSession.id)
            .order_by(DosingSession.id)
        ).all()
    seeded = time.perf_counter() - began
    excluded = VitalReading.__audit_exclude__
    columns = [c.key for c in inspect(VitalReading).column_attrs if c.key not in excluded]
    start = datetime(2026, 10, 1, 15, tzinfo=UTC)
    began = time.perf_counter()
    with engine.connect() as connection:
        head = connection.execute(
            select(AuditRecord.sequence, AuditRecord.record_hash)
            .order_by(AuditRecord.sequence.desc())
            .limit(1)
        ).first()
        sequence, previous = (head[0], head[1]) if head else (0, GENESIS_HASH)
        connection.commit()
        for first in range(0, readings, PER_TRANSACTION):
            rows, records = [], []
            for number in range(first, min(first + PER_TRANSACTION, readings)):
                row = _reading(number, tuple(sessions[number % len(sessions)]), start)
                record = SimpleNamespace(
                    id=new_id(),
                    occurred_at=row["received_at"],
                    actor=ACTOR,
                    action="create",
                    entity_type=VitalReading.__tablename__,
                    entity_id=str(row["id"]),
                    before=None,
                    after={key: jsonable(row[key]) for key in columns},
                    reason=None,
                    request_id=None,
                    client_address=None,
                )
                sequence += 1
                previous = link(record, sequence, previous)
                rows.append(row)
                records.append(vars(record))
            with connection.begin():
                connection.execute(insert(VitalReading.__table__), rows)
                connection.execute(insert(AuditRecord.__table__), records)
    engine.dispose()
    return {"seed_s": round(seeded, 1), "load_s": round(time.perf_counter() - began, 1)}


def _verify(url: str) -> dict[str, Any]:
    from app.audit.verify import verify_database

    began = time.perf_counter()
    result = verify_database(url)
    return {
        "verified": result.intact,
        "records_checked": result.records_checked,
        "verify_s": round(time.perf_counter() - began, 1),
    }


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _cpu_s() -> float:
    """This process's CPU time (the database server's, on PostgreSQL, is not in it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(job: str, out: Path) -> dict[str, Any]:
    """In a process of its own: one export of the demo study into ``out``; its figures."""
    from app.db import get_export_sessionmaker, get_sessionmaker
    from app.exports.sdtm import service, xpt
    from app.exports.sdtm.metadata import VS
    from app.exports.sdtm.rows import ExportCounts, vs_rows
    from app.exports.sdtm.service import FileFormat

    with get_sessionmaker()() as session:
        study = service.study_by_code(session, STUDY)
    readers = get_export_sessionmaker()
    began, cpu = time.perf_counter(), _cpu_s()
    counts = ExportCounts()
    extra: dict[str, Any] = {}
    if job in PACKAGES:
        from app.exports.sdtm.package import write_package, write_package_zip

        if job == "package":
            manifest = write_package(readers, study, out)
            size = sum(path.stat().st_size for path in out.iterdir())
        else:
            target = out / "package.zip"
            manifest = write_package_zip(readers, study, target)
            size = target.stat().st_size
        vs_files = [f for f in manifest["files"] if f["file"] == "vs.csv"]
        counts.rows = vs_files[0]["rows"]
        extra = {
            "files": len(manifest["files"]),
            "all_rows": sum(f["rows"] or 0 for f in manifest["files"]),  # define.xml: None
        }
    elif job == "xpt":
        with readers() as session:
            parts = xpt.write_parts(VS, vs_rows(session, study, False, counts), out)
        size, extra = sum(part.path.stat().st_size for part in parts), {"parts": len(parts)}
    else:
        path = out / f"vs.{job}"
        with path.open("wb") as file:
            for chunk in service.text_chunks(readers, study, VS, FileFormat(job), False, counts):
                file.write(chunk)
        size = path.stat().st_size
    seconds = time.perf_counter() - began
    return {
        "vs_rows": counts.rows,
        "seconds": round(seconds, 2),
        "vs_rows_per_s": round(counts.rows / seconds),
        "cpu_s": round(_cpu_s() - cpu, 2),
        "peak_rss_mb": _peak_mb(),
        "bytes": size,
        **extra,
    }


@contextmanager
def _database(postgres: str | None, scratch: Path) -> Iterator[str]:
    """A scratch database's URL: a SQLite file in ``scratch``, or a new PostgreSQL database
    (dropped afterwards)."""
    if postgres is None:
        yield f"sqlite:///{scratch / 'bench.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"vigil_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def _run_size(readings: int, postgres: str | None, verify: bool, jobs: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {"readings": readings}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        with _database(postgres, scratch) as url:
            env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
            loaded = subprocess.run(
                [sys.executable, __file__, "--load", str(readings), "--url", url]
                + (["--verify"] if verify else []),
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            figures["load"] = json.loads(loaded.stdout.strip().splitlines()[-1])
            print(f"{readings:,} readings loaded: {figures['load']}", flush=True)
            for job in jobs:
                out = scratch / job.replace(".", "-")
                out.mkdir()
                child = subprocess.run(
                    [sys.executable, __file__, "--child", job, "--out", str(out)],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                result = json.loads(child.stdout.strip().splitlines()[-1])
                figures[job] = result
                print(
                    f"  {job:11} {result['vs_rows']:>10,} VS rows {result['seconds']:>8.1f} s "
                    f"{result['vs_rows_per_s']:>9,} VS rows/s ({result['cpu_s']:.1f} CPU s)  "
                    f"peak RSS {result['peak_rss_mb']} MB",
                    flush=True,
                )
                subprocess.run(["rm", "-rf", str(out)], check=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--postgres", help="a PostgreSQL URL whose server hosts the scratch db")
    parser.add_argument("--verify", action="store_true", help="verify the audit trail after load")
    parser.add_argument(
        "--jobs", nargs="+", choices=FORMATS + PACKAGES, default=list(FORMATS + PACKAGES)
    )
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)  # a child's job
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=FORMATS + PACKAGES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is not None:
        figures = _load(args.url, args.load)
        if args.verify:
            figures |= _verify(args.url)
        print(json.dumps(figures))
        return
    if args.child:
        print(json.dumps(_child(args.child, args.out)))
        return
    database = "postgresql" if args.postgres else "sqlite"
    results = [
        _run_size(readings, args.postgres, args.verify, args.jobs) for readings in args.readings
    ]
    print(json.dumps({"database": database, "cores": os.cpu_count(), "sizes": results}))


if __name__ == "__main__":
    main()
