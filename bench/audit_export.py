"""Audit trail export and offline verification speed: records/s and peak RSS per phase.

Migrates a scratch SQLite database (or --database-url), appends --records audit records through a
bulk path (chained in Python by app/audit/chain.py, as the recorder chains them: chain version 2,
a salted commitment to each client address; one multi-row INSERT per 5,000), then, each in a
process of its own so that its peak RSS is its own: exports the trail as NDJSON (withheld
fields as commitments), verifies the file offline, verifies the database (the ratio of the two
is what the export's checks cost), and renders ODM. The last line is one JSON object.
Run: `.venv/bin/python bench/audit_export.py --records 200000`.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
VIGIL = str(ROOT / ".venv" / "bin" / "vigil")
PHASES = ("export", "verify-file", "verify-database", "odm")
CHUNK = 5000


def _seed(url: str, count: int) -> None:
    from sqlalchemy import insert, select

    from app.audit.chain import GENESIS_HASH, link
    from app.db import make_engine
    from app.ids import new_id
    from app.models import AuditRecord

    table = AuditRecord.__table__
    engine = make_engine(url)
    with engine.begin() as connection:
        head = connection.execute(
            select(table.c.sequence, table.c.record_hash).order_by(table.c.sequence.desc())
        ).first()
        sequence, previous = (head[0], head[1]) if head else (0, GENESIS_HASH)
        start = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
        rows = []
        for number in range(count):
            at = start + timedelta(seconds=5 * number)
            record = SimpleNamespace(
                id=new_id(),
                occurred_at=at,
                actor="device:tablet-01",
                action="create",
                entity_type="vital_readings",
                entity_id=str(new_id()),
                before=None,
                after={
                    "measured_at": at.isoformat(),
                    "sysbp_mmhg": 120 + number % 40,
                    "diabp_mmhg": 80 + number % 15,
                    "pulse_bpm": 70 + number % 30,
                    "temp_c": 36.5 + (number % 10) / 10,
                    "source": "bench",
                    "record_status": "valid",
                },
                reason=None,
                request_id=f"req-{number}",
                client_address="10.0.0.7",
            )
            sequence += 1
            previous = link(record, sequence, previous)
            rows.append(vars(record))
            if len(rows) == CHUNK:
                connection.execute(insert(table), rows)
                rows.clear()
        if rows:
            connection.execute(insert(table), rows)
    engine.dispose()


def _phase(phase: str, out: Path) -> dict[str, float]:
    """In the child process: one phase, timed, with its own peak RSS."""
    from app import listeners
    from app.cli import cli

    listeners.install()
    began = time.perf_counter()
    args = {
        "export": ["audit", "export", "--out", str(out)],
        "verify-file": ["audit", "verify", "--file", str(out)],
        "verify-database": ["audit", "verify"],
        "odm": ["audit", "export", "--odm", "--out", str(out.with_suffix(".xml"))],
    }[phase]
    try:
        cli(args, standalone_mode=False)
    except SystemExit as exit_:  # pragma: no cover - a broken trail
        raise RuntimeError(f"{phase} failed: {exit_}") from None
    seconds = time.perf_counter() - began
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(_phase(args.phase, Path(args.out))))
        return

    scratch = Path(tempfile.mkdtemp(prefix="vigil-bench-audit-"))
    url = args.database_url or f"sqlite:///{scratch}/bench.db"
    env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
    subprocess.run([VIGIL, "migrate"], env=env, check=True, capture_output=True)
    began = time.perf_counter()
    _seed(url, args.records)
    print(f"appended {args.records} audit records in {time.perf_counter() - began:.1f} s")
    out = scratch / "audit-trail.ndjson"
    figures: dict[str, object] = {"records": args.records}
    for phase in PHASES:
        child = subprocess.run(
            [sys.executable, __file__, "--phase", phase, "--out", str(out)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["records_per_s"] = round(args.records / result["seconds"])
        figures[phase] = result
        print(
            f"{phase:16} {result['seconds']:>7} s  {result['records_per_s']:>8} records/s  "
            f"peak RSS {result['peak_rss_mb']} MB"
        )
    figures["file_mb"] = round(out.stat().st_size / 2**20)
    export, verify_file = figures["export"], figures["verify-file"]
    verify_db = figures["verify-database"]
    assert isinstance(export, dict) and isinstance(verify_file, dict)
    assert isinstance(verify_db, dict)
    figures["verify_file_vs_database"] = round(verify_file["seconds"] / verify_db["seconds"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
