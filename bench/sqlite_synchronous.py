"""What SQLite's synchronous=FULL costs against NORMAL, in one run: committed vital-reading batches
per second through Vigil's own ingest path (the batch service, its alert evaluation and audit
chain, one transaction per batch, as a request does), the two settings taking turns on the same
scratch database file so that the machine's state weighs on both alike.

In WAL mode NORMAL syncs the log only at checkpoints: a committed transaction survives a killed
process but may be lost on power loss. FULL syncs the log at every commit, so a 2xx survives power
loss too; Vigil uses FULL. Run: `.venv/bin/python bench/sqlite_synchronous.py`; the last line is
one JSON object.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from app import listeners, migrations
from app.db import make_engine
from app.demo.seed import seed_demo
from app.models import DosingSession
from app.vitals import service as vitals


def _reading(at: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": at.isoformat(),
        "observations": [
            {"code": "SYSBP", "value": 128, "unit": "mmHg"},
            {"code": "DIABP", "value": 82, "unit": "mmHg"},
            {"code": "PULSE", "value": 88, "unit": "beats/min"},
            {"code": "TEMP", "value": 37.1, "unit": "C"},
        ],
    }


def _engine(url: str, mode: str) -> Engine:
    engine = make_engine(url)  # Vigil's own pragmas first, then this run's synchronous mode
    event.listen(engine, "connect", lambda conn, _: conn.execute(f"PRAGMA synchronous={mode}"))
    return engine


def _round(engine: Engine, session_id: uuid.UUID, start: datetime, batches: int, size: int):
    """Seconds per committed batch, one transaction each."""
    took = []
    for b in range(batches):
        readings = [_reading(start + timedelta(milliseconds=b * size + i)) for i in range(size)]
        began = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            session.info["actor"] = "device:bench-tablet"
            dosing = session.get_one(DosingSession, session_id)
            vitals.ingest_batch(session, dosing, readings, "bench")
            session.commit()
        took.append(time.perf_counter() - began)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="turns of each setting")
    parser.add_argument("--batches", type=int, default=20, help="batches per turn")
    parser.add_argument("--batch-size", type=int, default=5)
    args = parser.parse_args()

    listeners.install()  # audited and judged as a request is
    url = f"sqlite:///{tempfile.mkdtemp(prefix='vigil-bench-')}/bench.db"
    migrations.upgrade(url)
    setup = make_engine(url)
    with Session(setup) as session:
        session.info["actor"] = "bench"
        seed_demo(session)
        session.commit()
        live = session.scalars(
            select(DosingSession.id).where(DosingSession.status == "in_progress")
        ).first()
    setup.dispose()
    assert live is not None, "the demo has no dosing session in progress"

    engines = {mode: _engine(url, mode) for mode in ("NORMAL", "FULL")}
    took: dict[str, list[float]] = {mode: [] for mode in engines}
    start = datetime.now(UTC) - timedelta(minutes=50)
    for r in range(args.rounds):
        for mode, engine in engines.items():
            at = start + timedelta(seconds=r * 2 + (mode == "FULL"))
            took[mode] += _round(engine, live, at, args.batches, args.batch_size)
    for engine in engines.values():
        engine.dispose()

    figures: dict[str, Any] = {"benchmark": "sqlite_synchronous", "batch_size": args.batch_size}
    for mode, seconds in took.items():
        figures[f"{mode.lower()}_batches_per_s"] = round(len(seconds) / sum(seconds), 1)
        figures[f"{mode.lower()}_batch_ms_p50"] = round(statistics.median(seconds) * 1000, 2)
    figures["full_over_normal_time"] = round(sum(took["FULL"]) / sum(took["NORMAL"]), 2)
    print(
        f"NORMAL {figures['normal_batches_per_s']} batches/s, FULL "
        f"{figures['full_batches_per_s']} batches/s: FULL takes "
        f"{figures['full_over_normal_time']}x the time",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
