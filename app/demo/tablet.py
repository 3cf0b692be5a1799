"""A simulated bedside tablet: posts plausible vitals into a live dosing session over HTTP.

Now and then it goes "offline", keeps its readings, and posts them as one batch when it is back,
the way real tablets do; every reading carries its own UUID so a retry never duplicates.
"""

import logging
import random
import threading
import uuid
from datetime import datetime

import httpx

from app.clock import utcnow
from app.demo.vitals_curve import observations

log = logging.getLogger("vigil.tablet")


def _find_live_session(client: httpx.Client) -> tuple[str, datetime | None]:
    page = client.get("/api/v1/dosing-sessions", params={"status": "in_progress"}).json()
    if not page["items"]:
        raise RuntimeError("no dosing session is in progress; run `vigil demo` first")
    live = page["items"][0]
    initial = [d for d in live.get("doses", []) if d["kind"] == "initial"]
    dosed_at = datetime.fromisoformat(initial[0]["administered_at"]) if initial else None
    return live["id"], dosed_at


def run(
    base_url: str = "http://127.0.0.1:8000",
    session_id: str | None = None,
    interval_seconds: float = 5.0,
    stop: threading.Event | None = None,
    max_posts: int | None = None,
    seed: int | None = None,
) -> int:
    """Post readings until ``stop`` is set or after ``max_posts`` posts; returns readings sent."""
    stop = stop or threading.Event()
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    sent = posts = 0
    buffered: list[dict[str, object]] = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        found_id, dosed_at = _find_live_session(client)
        session_id = session_id or found_id
        url = f"/api/v1/dosing-sessions/{session_id}/vital-readings/batch"
        log.info("tablet posting to dosing session %s every %.1fs", session_id, interval_seconds)
        while not stop.is_set() and (max_posts is None or posts < max_posts):
            now = utcnow()
            minutes = (now - dosed_at).total_seconds() / 60 if dosed_at else 0.0
            buffered.append(
                {
                    "id": str(uuid.uuid4()),
                    "measured_at": now.isoformat(),
                    "observations": observations(minutes, rng),
                    "source": "demo-tablet",
                }
            )
            offline = rng.random() < 0.15 and len(buffered) < 4
            if not offline:
                try:
                    result = client.post(url, json={"readings": buffered}).json()
                    sent += result.get("accepted", 0) + result.get("duplicates", 0)
                    buffered = []
                except httpx.HTTPError as exc:  # keep the readings and retry next tick
                    log.warning("tablet could not post (%s); will retry", exc)
                posts += 1
            stop.wait(interval_seconds)
    return sent
