"""A simulated bedside tablet: posts plausible vitals into a live dosing session over HTTP.

Now and then it goes "offline", keeps its readings, and posts them as one batch when it is back,
the way real tablets do; every reading carries its own UUID so a retry never duplicates.
"""

import logging
import os
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import service as credentials
from app.auth import tokens
from app.clock import utcnow
from app.demo.vitals_curve import observations
from app.models import AccessToken, Dose, DosingSession, Participant, User, user_sites
from app.vocabulary import RecordStatus

log = logging.getLogger("vigil.tablet")


DEMO_DEVICE = "tablet-s01"


@dataclass(frozen=True)
class TabletSetup:
    token: str
    session_id: str
    dosed_at: datetime | None
    token_id: uuid.UUID | None = None  # set when the token was issued for this run only


class TabletRefused(RuntimeError):
    """The server refused the tablet's credentials (401 or 403): posting again cannot help."""


def prepare_demo_tablet(session: Session) -> TabletSetup:
    """Find the dosing session in progress at the demo tablet's site and issue the tablet a
    device token of its own for this run. The tokens of other runs (another `vigil serve
    --demo-tablet` posting now) keep working: each run revokes only its own, at its end."""
    device = session.scalar(select(User).where(User.username == DEMO_DEVICE))
    if device is None:
        raise RuntimeError(f"no device {DEMO_DEVICE!r}; run `vigil demo` first")
    if not device.active:
        raise RuntimeError(f"the demo tablet's device {DEMO_DEVICE!r} is deactivated")
    live = session.execute(
        select(DosingSession.id, Dose.administered_at)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .join(user_sites, user_sites.c.site_id == Participant.site_id)
        .outerjoin(
            Dose,
            (Dose.dosing_session_id == DosingSession.id)
            & (Dose.kind == "initial")
            & (Dose.record_status == RecordStatus.VALID.value),
        )
        .where(user_sites.c.user_id == device.id, DosingSession.status == "in_progress")
    ).first()
    if live is None:
        raise RuntimeError("no dosing session is in progress at the demo tablet's site")
    label = f"{DEMO_DEVICE} (process {os.getpid()})"
    row, token = tokens.issue(session, device, tokens.TokenKind.DEVICE, label=label)
    return TabletSetup(token, str(live[0]), live[1], row.id)


def retire_demo_token(session: Session, token_id: uuid.UUID) -> None:
    """Revoke the token a run of the demo tablet was issued, when that run stops."""
    token = session.get(AccessToken, token_id)
    if token is not None and token.revoked_at is None:
        credentials.revoke(session, token, "demo tablet stopped")


def run(
    base_url: str,
    token: str,
    session_id: str,
    dosed_at: datetime | None = None,
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
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=10, headers=headers) as client:
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
                    # when it was sent, by its clock: the server estimates the clock's offset
                    sent_at = {"X-Sent-At": utcnow().isoformat()}
                    response = client.post(url, json={"readings": buffered}, headers=sent_at)
                    _refuse_if_unauthorised(response)
                    response.raise_for_status()
                    result = response.json()
                    sent += result.get("accepted", 0) + result.get("duplicates", 0)
                    buffered = []
                except httpx.HTTPError as exc:  # keep the readings and retry next tick
                    log.warning("tablet could not post (%s); will retry", exc)
                posts += 1
            stop.wait(interval_seconds)
    return sent


def _refuse_if_unauthorised(response: httpx.Response) -> None:
    if response.status_code not in {401, 403}:
        return
    try:
        detail = response.json().get("detail") or response.reason_phrase
    except ValueError:
        detail = response.reason_phrase
    raise TabletRefused(
        f"the server refused the tablet ({response.status_code}: {detail}); it stops posting: "
        "give it a new device token (ask an admin, or run `vigil tablet` again for the demo's)"
    )
