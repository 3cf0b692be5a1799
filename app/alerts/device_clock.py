"""Readings from a device whose clock is off: stored as the device reported them, flagged, and a
``device_clock`` alert for the session the clinicians see beside the session's other alerts.

A clinician judges a reading by when it was taken. A tablet whose clock is ten minutes slow
makes every reading look ten minutes older than it is; one that is fast can make a reading look
taken after it arrived. So beyond the tolerance (VIGIL_CLOCK_SKEW_SECONDS) each reading is
flagged (``device_clock_flagged``, with the offset applied in ``device_clock_offset_seconds``),
lateness and overdue measurements are judged on the corrected time (measured_at less the
offset), and one warning alert per session and device says what is off, by how much, and what
to do: a flag on a reading is only seen by whoever opens that reading, the alert is seen by the
session's clinicians at once (docs/devices.md). Deduplicated: later flagged readings of the same
device and session update the alert (occurrences, last found); a fixed clock stops adding.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.alerts import service as alerts
from app.auth.device_clock import Offset, described
from app.config import get_settings
from app.models import Alert, DosingSession, Participant, VitalReading

KIND = "device_clock"
RULE_ID = "device-clock"
SEVERITY = "warning"


def dedup_key(dosing_session: DosingSession, offset: Offset) -> str:
    return f"{KIND}:{dosing_session.id}:{offset.device_id}"


def flag_readings(
    session: Session,
    dosing_session: DosingSession,
    offset: Offset,
    readings: Sequence[VitalReading],
    now: datetime,
) -> Alert | None:
    """Open or update the session's device_clock alert for these flagged readings (just
    stored); None if none is flagged."""
    flagged = [r for r in readings if r.device_clock_flagged]
    if not flagged:
        return None
    participant = session.get_one(Participant, dosing_session.participant_id)
    tolerance = get_settings().clock_skew_seconds
    off_by = described(offset.offset_seconds)
    message = (
        f"The clock of device {offset.device_name} is {off_by} the server's clock (tolerance "
        f"{tolerance} s). Its readings keep the times it reported; lateness and overdue "
        "measurements are judged on the corrected times. Set the device's clock (automatic "
        "network time) and check the times of its readings."
    )
    alert, _ = alerts.upsert_from_finding(
        session,
        participant=participant,
        dosing_session=dosing_session,
        protocol_version_id=dosing_session.protocol_version_id,
        rule_id=RULE_ID,
        kind=KIND,
        severity=SEVERITY,
        dedup_key=dedup_key(dosing_session, offset),
        title=f"Clock of device {offset.device_name} is off",
        message=message,
        finding={
            "device_id": str(offset.device_id),
            "device": offset.device_name,
            "offset_seconds": offset.offset_seconds,
            "offset_measured_at": offset.measured_at.isoformat(),
            "tolerance_seconds": tolerance,
            "evidence": [str(r.id) for r in flagged],
        },
        found=alerts.Span.of(now),
        new_occurrences=len(flagged),
    )
    return alert
