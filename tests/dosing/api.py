"""Calls the dosing tests make through the HTTP API."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch

from app.clock import utcnow

# Sessions in these tests start ten hours ago, so every time in them is in the past.
STARTED = (utcnow() - timedelta(hours=10)).replace(microsecond=0)


def at(minutes: float) -> str:
    """ISO time ``minutes`` after the session start."""
    return (STARTED + timedelta(minutes=minutes)).isoformat()


@contextmanager
def server_time(minutes: float) -> Iterator[None]:
    """Vigil's clock at ``minutes`` after the session start while the block runs: a reading
    posted in it is received then (the dose gate judges a dose on what was received by it)."""
    with patch("app.clock.utcnow", return_value=STARTED + timedelta(minutes=minutes)):
        yield


def visit_id(client, participant_id, code: str) -> str:
    visits = client.get(f"/api/v1/participants/{participant_id}/visits").json()["items"]
    return next(v["id"] for v in visits if v["code"] == code)


def create_session(client, participant_id, code: str = "EXP1") -> dict[str, Any]:
    response = client.post(
        f"/api/v1/participants/{participant_id}/dosing-sessions",
        json={"visit_id": visit_id(client, participant_id, code)},
    )
    assert response.status_code == 201, response.text
    return response.json()


def started_session(
    client, participant_id, code: str = "EXP1", pair: tuple[Any, Any] | None = None
) -> dict[str, Any]:
    """A session started at STARTED; with ``pair`` (two therapist users) attested present five
    minutes before, so an initial dose may be given."""
    session = create_session(client, participant_id, code)
    response = client.post(
        f"/api/v1/dosing-sessions/{session['id']}/start", json={"started_at": at(0)}
    )
    assert response.status_code == 200, response.text
    if pair is not None:
        attest_pair(client, session["id"], *pair)
    return response.json()


def attest_pair(client, session_id, lead, co, minutes: float = -5) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/dosing-sessions/{session_id}/therapist-presence",
        json={
            "lead_therapist_id": str(lead.id),
            "co_therapist_id": str(co.id),
            "present_at": at(minutes),
            "reason": "both in the room; attested by the site physician",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def give(client, session_id, kind: str, amount_mg: float, minutes: float, **extra: Any):
    return client.post(
        f"/api/v1/dosing-sessions/{session_id}/doses",
        json={"kind": kind, "amount_mg": amount_mg, "administered_at": at(minutes), **extra},
    )


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fresh_normal_reading(client, session_id, minutes: float) -> dict[str, Any]:
    """A quiet, complete reading at ``minutes`` after the start, received 10 s later, so the dose
    gate has fresh vitals (the MDMA protocol wants them at most 30 min old before a supplemental
    dose)."""
    with server_time(minutes + 1 / 6):
        return post_reading(client, session_id, minutes)


def post_reading(client, session_id, minutes: float, **values: float) -> dict[str, Any]:
    """A reading at ``minutes`` after the start, quiet unless ``values`` say otherwise."""
    observed = {"SYSBP": 122, "DIABP": 78, "PULSE": 76, "TEMP": 36.8, **values}
    units = {"SYSBP": "mmHg", "DIABP": "mmHg", "PULSE": "beats/min", "TEMP": "C"}
    response = client.post(
        f"/api/v1/dosing-sessions/{session_id}/vital-readings",
        json={
            "id": str(uuid.uuid4()),
            "measured_at": at(minutes),
            "observations": [
                {"code": code, "value": value, "unit": units[code]}
                for code, value in observed.items()
            ],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()
