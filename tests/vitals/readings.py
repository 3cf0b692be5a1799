"""Readings as a bedside tablet sends them."""

import uuid
from datetime import timedelta
from typing import Any

from tests.factories.dosing import T0


def observation(code: str, value: float, unit: str) -> dict[str, Any]:
    return {"code": code, "value": value, "unit": unit}


def reading(minutes: float = 60, *observations: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A reading ``minutes`` after T0 (the session start); by default a full, plausible set."""
    return {
        "id": str(uuid.uuid4()),
        "measured_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "observations": list(observations)
        or [
            observation("SYSBP", 150, "mmHg"),
            observation("DIABP", 95, "mmHg"),
            observation("PULSE", 104, "beats/min"),
            observation("TEMP", 37.9, "C"),
        ],
        "source": "tablet-S01-3",
        **fields,
    }
