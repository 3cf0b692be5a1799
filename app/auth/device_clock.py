"""A bedside device's clock offset, estimated from the times its requests say they were sent.

A device may say when it sent a request in two headers: ``X-Sent-At`` (ISO 8601 with an
offset, sub-second) and the HTTP ``Date`` header (RFC 9110 section 6.6.1, one-second
resolution; the obsolete RFC 850 and asctime forms are accepted too, as RFC 9110 asks of a
recipient). ``X-Sent-At`` wins when both are given and valid. One sample is the sent time less
the server's clock at receipt, so a device whose clock is ahead has a positive offset (network
latency makes every sample a little smaller than the true offset). A header that cannot be read
is ignored, never refused: a reading matters more than its sender's clock.

The estimate is the median of the last :data:`SAMPLES_KEPT` samples, robust to one request held
up in a queue. Like a token's last_seen_at, the row is rewritten at most once a minute while the
estimate holds steady, so a tablet's concurrent requests do not queue behind its row.
"""

import statistics
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy.orm import Session

from app.clock import as_utc
from app.config import get_settings
from app.models import DeviceClock, User
from app.models.conflicts import insert_skipping_conflicts

SENT_AT_HEADER = "x-sent-at"
SAMPLES_KEPT = 5
REMEASURE_AFTER = timedelta(minutes=1)
# A sample this far from the estimate is written at once (the clock was set, or drifts).
CHANGE_SECONDS = 2.0


@dataclass(frozen=True)
class Offset:
    """A device's clock offset as known during one request (session.info["device_clock"])."""

    device_id: uuid.UUID
    device_name: str
    offset_seconds: float
    measured_at: datetime

    @property
    def beyond_tolerance(self) -> bool:
        return abs(self.offset_seconds) > get_settings().clock_skew_seconds


def sent_at(headers: Mapping[str, str]) -> datetime | None:
    """When the request says it was sent, or None (no header, or none that can be read)."""
    raw = headers.get(SENT_AT_HEADER)
    if raw:
        try:
            return as_utc(datetime.fromisoformat(raw.strip()))
        except ValueError:
            pass
    raw = headers.get("date")
    if raw:
        try:
            return as_utc(parsedate_to_datetime(raw.strip()))
        except (TypeError, ValueError, IndexError):
            pass
    return None


def _insert(session: Session, row: dict[str, object]) -> None:
    session.execute(insert_skipping_conflicts(session, DeviceClock).values(row))


def observe(
    session: Session,
    device: User,
    clock: DeviceClock | None,
    headers: Mapping[str, str],
    now: datetime,
) -> Offset | None:
    """Take this request's sample (if it carries a sent time) into the device's estimate
    (``clock``, as loaded with the device's token, app/auth/tokens.py); returns the estimate, or
    None if the device has never sent one."""
    device_id, device_name = device.id, device.username
    sent = sent_at(headers)
    if sent is not None:
        sample = (sent - now).total_seconds()
        if clock is None:
            _insert(
                session,
                {
                    "device_id": device_id,
                    "offset_seconds": sample,
                    "measured_at": now,
                    "samples": [sample],
                },
            )
            clock = session.get(DeviceClock, device_id, populate_existing=True)
        elif (
            now - clock.measured_at >= REMEASURE_AFTER
            or abs(sample - clock.offset_seconds) > CHANGE_SECONDS
        ):
            samples = [*clock.samples, sample][-SAMPLES_KEPT:]
            clock.samples = samples
            clock.offset_seconds = float(statistics.median(samples))
            clock.measured_at = now
    if clock is None:
        return None
    return Offset(device_id, device_name, clock.offset_seconds, clock.measured_at)


def described(offset_seconds: float) -> str:
    """'7 min 30 s ahead of', '12 s behind' the server's clock."""
    total = round(abs(offset_seconds))
    minutes, seconds = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{seconds} s"] if seconds or not parts else []
    side = "ahead of" if offset_seconds > 0 else "behind"
    return f"{' '.join(parts)} {side}"
