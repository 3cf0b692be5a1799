"""Vital-sign readings: one row per measurement moment, canonical units, as-reported kept."""

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, record_status_check
from app.vocabulary import RecordStatus


class VitalReading(Audited, Base):
    """Keyed by the client's UUID, so a replayed batch can never duplicate a reading."""

    __tablename__ = "vital_readings"
    __table_args__ = (Index(None, "dosing_session_id", "measured_at"), record_status_check())

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dosing_session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dosing_sessions.id"))
    measured_at: Mapped[datetime]
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100))
    sysbp_mmhg: Mapped[float | None]
    diabp_mmhg: Mapped[float | None]
    pulse_bpm: Mapped[float | None]
    resp_rate_per_min: Mapped[float | None]
    temp_c: Mapped[float | None]
    spo2_pct: Mapped[float | None]
    # The NEWS2 observations that are not measures; None: not recorded with this reading.
    supplemental_oxygen: Mapped[bool | None]
    new_confusion: Mapped[bool | None]
    reported: Mapped[dict[str, Any]]
    # The sending device's clock offset when the reading arrived (device minus server time,
    # app/models/user.py DeviceClock), None when not known; measured_at stays as reported, and
    # what the rules judge lateness on is measured_at less this offset (corrected_measured_at).
    device_clock_offset_seconds: Mapped[float | None]
    # The offset was beyond the tolerance (VIGIL_CLOCK_SKEW_SECONDS) when it arrived.
    device_clock_flagged: Mapped[bool] = mapped_column(default=False, server_default=false())
    record_status: Mapped[str] = mapped_column(String(20), default=RecordStatus.VALID.value)
    error_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def corrected_measured_at(self) -> datetime:
        """measured_at on the server's clock: less the device's clock offset, where known."""
        if self.device_clock_offset_seconds is None:
            return self.measured_at
        return self.measured_at - timedelta(seconds=self.device_clock_offset_seconds)
