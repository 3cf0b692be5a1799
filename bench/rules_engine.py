"""Rule evaluations per second of the pure engine, by the number of readings in a session.

Every evaluation judges the whole session (every reading, every rule of the MDMA protocol), so
its cost grows with the session's size; an 8-hour session measured every 30 min holds ~20
readings, one measured every minute ~500. Run: `.venv/bin/python bench/rules_engine.py`.
The last line is one JSON object.
"""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.protocols.loader import load_protocol_file
from app.rules import Dose, Reading, SessionSnapshot, evaluate

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, 8, tzinfo=UTC)


def snapshot(readings_in_session: int) -> SessionSnapshot:
    spacing = timedelta(minutes=480 / readings_in_session)
    readings = tuple(
        Reading(
            id=str(uuid.uuid4()),
            measured_at=T0 + spacing * i,
            values={"SYSBP": 128 + i % 40, "DIABP": 82, "PULSE": 88 + i % 30, "TEMP": 37.1},
        )
        for i in range(readings_in_session)
    )
    return SessionSnapshot(
        dosing_session_id="bench",
        visit_code="EXP1",
        now=T0 + timedelta(hours=8),
        started_at=T0 - timedelta(minutes=30),
        readings=readings,
        doses=(Dose(id="d1", kind="initial", amount_mg=80, administered_at=T0),),
    )


def main() -> None:
    protocol = load_protocol_file(ROOT / "protocols" / "mdma-ptsd-phase3.yaml").protocol
    figures: dict[str, object] = {"benchmark": "rules_engine", "rules": len(protocol.rules)}
    for size in (20, 100, 500, 1000):
        snap = snapshot(size)
        runs, began = 0, time.perf_counter()
        while time.perf_counter() - began < 1.0:
            evaluate(protocol, snap)
            runs += 1
        elapsed = time.perf_counter() - began
        figures[f"evaluations_per_s_{size}_readings"] = round(runs / elapsed, 1)
        figures[f"ms_per_evaluation_{size}_readings"] = round(elapsed / runs * 1000, 2)
        print(
            f"{size:5d} readings/session: {runs / elapsed:8.1f} evaluations/s, "
            f"{elapsed / runs * 1000:7.2f} ms each"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
