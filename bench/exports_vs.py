"""SDTM VS export speed: VS rows/s and peak RSS per format on a synthetic study.

Migrates a scratch SQLite database (or --database-url), seeds the demo study (`vigil demo`),
then adds --readings vital readings (4 tests each: SYSBP, DIABP, PULSE, TEMP) to its dosing
sessions through a bulk path (one multi-row INSERT per 5,000 readings; no audit records, unlike
the services), and exports VS in each format, each in a process of its own so that its peak RSS
is its own. A VS row is one test of one reading. The last line is one JSON object.
Run: `.venv/bin/python bench/exports_vs.py --readings 250000`.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIGIL = str(ROOT / ".venv" / "bin" / "vigil")
FORMATS = ("csv", "json", "ndjson", "xpt")
CHUNK = 5000


def _seed_readings(url: str, count: int) -> None:
    from sqlalchemy import insert, select

    from app.db import make_engine
    from app.models import DosingSession, VitalReading

    engine = make_engine(url)
    with engine.begin() as connection:
        sessions = list(connection.scalars(select(DosingSession.id)))
        start = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
        rows = []
        for number in range(count):
            at = start + timedelta(seconds=20 * number)
            observations = [
                {"code": "SYSBP", "value": 120 + number % 40, "unit": "mmHg"},
                {"code": "DIABP", "value": 80 + number % 15, "unit": "mmHg"},
                {"code": "PULSE", "value": 70 + number % 30, "unit": "beats/min"},
                {"code": "TEMP", "value": 36.5 + (number % 10) / 10, "unit": "C"},
            ]
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "dosing_session_id": sessions[number % len(sessions)],
                    "measured_at": at,
                    "received_at": at,
                    "source": "bench",
                    "sysbp_mmhg": observations[0]["value"],
                    "diabp_mmhg": observations[1]["value"],
                    "pulse_bpm": observations[2]["value"],
                    "temp_c": observations[3]["value"],
                    "reported": {"measured_at": at.isoformat(), "observations": observations},
                    "record_status": "valid",
                }
            )
            if len(rows) == CHUNK:
                connection.execute(insert(VitalReading), rows)
                rows.clear()
        if rows:
            connection.execute(insert(VitalReading), rows)
    engine.dispose()


def _export(file_format: str, out: Path) -> dict[str, float]:
    """In the child process: export VS of the demo study once, print rows, seconds, peak RSS."""
    from app.db import get_export_sessionmaker, get_sessionmaker
    from app.demo.seed import STUDY_CODE
    from app.exports.sdtm import service, xpt
    from app.exports.sdtm.metadata import VS
    from app.exports.sdtm.rows import ExportCounts, vs_rows
    from app.exports.sdtm.service import FileFormat

    with get_sessionmaker()() as session:
        study = service.study_by_code(session, STUDY_CODE)
    readers = get_export_sessionmaker()
    began = time.perf_counter()
    counts = ExportCounts()
    if file_format == "xpt":
        with readers() as session:
            parts = xpt.write_parts(VS, vs_rows(session, study, False, counts), out.parent)
        size = sum(part.path.stat().st_size for part in parts)
        extra = {"parts": len(parts)}
    else:
        with out.open("wb") as file:
            for chunk in service.text_chunks(
                readers, study, VS, FileFormat(file_format), False, counts
            ):
                file.write(chunk)
        size, extra = out.stat().st_size, {}
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": counts.rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(counts.rows / seconds),
        "peak_rss_mb": round(peak_mb),
        "bytes": size,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--export", choices=FORMATS, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.export:
        out = Path(tempfile.mkdtemp(prefix="vigil-bench-vs-")) / f"vs.{args.export}"
        print(json.dumps(_export(args.export, out)))
        return

    scratch = tempfile.mkdtemp(prefix="vigil-bench-")
    url = args.database_url or f"sqlite:///{scratch}/bench.db"
    env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
    subprocess.run([VIGIL, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([VIGIL, "demo"], env=env, check=True, capture_output=True)
    began = time.perf_counter()
    _seed_readings(url, args.readings)
    print(f"seeded {args.readings} readings in {time.perf_counter() - began:.1f} s")
    figures: dict[str, object] = {"readings": args.readings}
    for file_format in FORMATS:
        child = subprocess.run(
            [sys.executable, __file__, "--export", file_format],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        figures[file_format] = result
        print(
            f"VS {file_format:6} {result['rows']:>9} rows  {result['rows_per_s']:>8} rows/s  "
            f"peak RSS {result['peak_rss_mb']} MB"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
