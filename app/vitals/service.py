"""Vital readings: idempotent ingestion from bedside tablets, checked one reading at a time.

A reading is keyed by the id its device generated, so a retried or replayed batch never
duplicates a row: an identical replay is reported as a duplicate, the same id with other content
is refused. Each reading is validated on its own and a bad one never costs the good ones of the
same batch. The batch path is the hot one (tablets post bursts after being offline): one query
finds the ids already stored, the new rows go in with one insert statement, each with its audit
record (app/audit/recorder.py insert_audited), chained at commit.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app import clock, metrics
from app.alerts import device_clock, disproval, evaluation, withdrawal
from app.audit.recorder import change_reason, insert_audited
from app.auth.device_clock import Offset
from app.clinical.measures import MEASURES
from app.config import get_settings
from app.dosing import service as dosing
from app.errors import Conflict, InvalidInput, VigilError, field_path
from app.models import DosingSession, VitalReading
from app.protocols import service as protocols
from app.protocols.schema import Protocol
from app.time_bounds import Bound, ImplausibleTime, check_within
from app.vitals.schemas import VitalReadingCreate
from app.vocabulary import RecordStatus

# A tablet that was offline may deliver readings after the session ended; those measured up to
# this long after the end still belong to the session (the participant stays monitored).

Status = Literal["accepted", "duplicate", "rejected"]


class BatchTooLarge(VigilError):
    status_code = 413
    title = "Batch too large"
    slug = "batch-too-large"


@dataclass
class ReadingResult:
    id: str | None  # as sent
    status: Status
    error: VigilError | None = None
    reading: VitalReading | None = None

    @property
    def problem(self) -> dict[str, Any] | None:
        return None if self.error is None else problem_of(self.error)


@dataclass
class BatchResult:
    results: list[ReadingResult] = field(default_factory=list)

    def _count(self, status: Status) -> int:
        return sum(1 for result in self.results if result.status == status)

    @property
    def accepted(self) -> int:
        return self._count("accepted")

    @property
    def duplicates(self) -> int:
        return self._count("duplicate")

    @property
    def rejected(self) -> int:
        return self._count("rejected")


def problem_of(error: VigilError) -> dict[str, Any]:
    """The problem+json body of a refused reading, as the error handler would render it."""
    return {
        "type": f"https://vigil.invalid/problems/{error.slug}",
        "title": error.title,
        "status": error.status_code,
        "detail": error.detail,
        "errors": error.errors or [],
    }


# --- validation ---------------------------------------------------------------------------------


def validation_error(errors: Sequence[Mapping[str, Any]]) -> InvalidInput:
    """An InvalidInput naming each field pydantic refused (the reading itself if no field)."""
    found = []
    for error in errors:
        message = str(error["msg"]).removeprefix("Value error, ")
        found.append({"field": field_path(error["loc"]) or "reading", "message": message})
    return InvalidInput("; ".join(f"{e['field']}: {e['message']}" for e in found), errors=found)


def parse_reading(raw: Any) -> VitalReadingCreate:
    """Validate one reading as sent; raises InvalidInput naming every refused field."""
    if isinstance(raw, VitalReadingCreate):
        return raw
    if not isinstance(raw, Mapping):
        message = f"a reading is a JSON object, not {type(raw).__name__} {raw!r:.40}"
        raise InvalidInput(message, errors=[{"field": "reading", "message": message}])
    try:
        return VitalReadingCreate.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def reading_problems(reading: VitalReadingCreate) -> list[dict[str, str]]:
    """What cannot be true of one measurement moment, beyond each value on its own."""
    problems = []
    first_at: dict[str, int] = {}
    for i, observation in enumerate(reading.observations):
        if observation.code in first_at:
            problems.append(
                {
                    "field": field_path(("observations", i, "code")),
                    "message": f"{observation.code} is given twice in one reading (also "
                    f"{field_path(('observations', first_at[observation.code]))})",
                }
            )
        else:
            first_at[observation.code] = i
    if "SYSBP" in first_at and "DIABP" in first_at:
        i, j = first_at["SYSBP"], first_at["DIABP"]
        systolic = reading.observations[i].canonical_value()
        diastolic = reading.observations[j].canonical_value()
        if systolic <= diastolic:
            problems.append(
                {
                    "field": field_path(("observations", i, "value")),
                    "message": f"SYSBP {systolic:g} mmHg is not above DIABP {diastolic:g} mmHg "
                    f"({field_path(('observations', j))}); systolic pressure is always the higher",
                }
            )
    return problems


def _context_problems(
    reading: VitalReadingCreate,
    dosing_session: DosingSession,
    protocol: Protocol,
    received_at: datetime,
    offset: Offset | None,
) -> list[dict[str, str]]:
    """Whether a reading taken at measured_at can belong to this session; on the server's
    clock (measured_at less the device's clock offset, where known), so a device whose clock
    is fast is flagged, not refused."""
    assert dosing_session.started_at is not None
    skew = get_settings().clock_skew_seconds
    window = protocol.vitals_schedule.baseline.within_minutes_before_dose
    earliest = Bound(
        dosing_session.started_at - timedelta(minutes=window),
        f"the session's start less the protocol's baseline window of {window} min, so it "
        "cannot belong to this session",
    )
    latest = Bound(
        received_at + timedelta(seconds=skew),
        f"the time the server received it plus the allowed clock skew of {skew} s",
    )
    if dosing_session.ended_at is not None:
        after_end = protocol.vitals_schedule.readings_accepted_after_end_minutes
        accepted_until = Bound(
            dosing_session.ended_at + timedelta(minutes=after_end),
            f"the session's end plus the {after_end} min the protocol accepts readings after "
            "it, so it cannot belong to this session",
        )
        latest = min(latest, accepted_until, key=lambda bound: bound.at)
    measured_at = reading.measured_at
    if offset is not None:
        measured_at -= timedelta(seconds=offset.offset_seconds)
    try:
        check_within(measured_at, earliest=earliest, latest=latest)
    except ImplausibleTime as exc:
        return [{"field": "measured_at", "message": str(exc)}]
    return []


def _observations_key(observations: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, str]]:
    return sorted((o["code"], float(o["value"]), o["unit"]) for o in observations)


def _reported(reading: VitalReadingCreate) -> dict[str, Any]:
    return {
        "measured_at": reading.measured_at.isoformat(),
        "observations": [o.model_dump() for o in reading.observations],
    }


def _differences(
    row: VitalReading, dosing_session: DosingSession, reading: VitalReadingCreate
) -> list[str]:
    if row.dosing_session_id != dosing_session.id:
        return ["dosing session"]
    differences = []
    if row.measured_at != reading.measured_at:
        differences.append("measured_at")
    given = _observations_key(_reported(reading)["observations"])
    if _observations_key(row.reported.get("observations", [])) != given:
        differences.append("observations")
    differences += [
        name
        for name in ("supplemental_oxygen", "new_confusion")
        if getattr(row, name) != getattr(reading, name)
    ]
    return differences


def _row(
    reading: VitalReadingCreate,
    dosing_session: DosingSession,
    received_at: datetime,
    source: str,
    offset: Offset | None,
) -> VitalReading:
    canonical: dict[str, float | None] = {m.column: None for m in MEASURES.values()}
    for observation in reading.observations:
        canonical[MEASURES[observation.code].column] = observation.canonical_value()
    return VitalReading(
        id=reading.id,
        dosing_session_id=dosing_session.id,
        measured_at=reading.measured_at.astimezone(UTC),
        received_at=received_at,
        source=reading.source or source[:100],
        reported=_reported(reading),
        supplemental_oxygen=reading.supplemental_oxygen,
        new_confusion=reading.new_confusion,
        device_clock_offset_seconds=None if offset is None else offset.offset_seconds,
        device_clock_flagged=offset is not None and offset.beyond_tolerance,
        **canonical,
    )


# --- ingestion ----------------------------------------------------------------------------------


def _require_started(dosing_session: DosingSession) -> None:
    if dosing_session.status == "planned" or dosing_session.started_at is None:
        raise Conflict(
            f"dosing session {dosing_session.id} has not started; vital readings are accepted "
            "once it is in progress"
        )


@dataclass(frozen=True)
class RefusedReading:
    """A reading of a batch refused as it was decoded (a control character, a key twice)."""

    id: str | None  # as sent, unless the id itself was refused
    error: InvalidInput


def id_as_sent(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) else None


def ingest_batch(
    session: Session,
    dosing_session: DosingSession,
    raw_readings: list[Any],
    source_default: str,
    *,
    received_at: datetime | None = None,
) -> BatchResult:
    """Store the valid new readings of a batch; report each one as accepted, duplicate or
    rejected (with its problem), in input order. Never all-or-nothing. ``received_at`` is now,
    except for a session's history seeded at once (the demo study)."""
    limit = get_settings().batch_size_max
    if len(raw_readings) > limit:
        raise BatchTooLarge(
            f"a batch holds at most {limit} readings, this one has {len(raw_readings)}; "
            "split it (each reading keeps its id, so resending is safe)"
        )
    _require_started(dosing_session)
    items: list[tuple[str | None, VitalReadingCreate | VigilError]] = []
    for raw in raw_readings:
        if isinstance(raw, RefusedReading):
            items.append((raw.id, raw.error))
            continue
        try:
            reading = parse_reading(raw)
        except InvalidInput as exc:
            items.append((id_as_sent(raw), exc))
        else:
            items.append((str(reading.id), reading))
    return _ingest(session, dosing_session, items, source_default, received_at=received_at)


def ingest_one(
    session: Session,
    dosing_session: DosingSession,
    reading: VitalReadingCreate | Mapping[str, Any],
    source_default: str,
) -> tuple[VitalReading, bool]:
    """Store one reading: (the stored reading, True if new; False for an identical replay).

    A refused reading raises InvalidInput (422) or Conflict (409, the id is taken)."""
    _require_started(dosing_session)
    parsed = parse_reading(reading)
    result = _ingest(session, dosing_session, [(str(parsed.id), parsed)], source_default)
    outcome = result.results[0]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.reading is not None
    return outcome.reading, outcome.status == "accepted"


def _replayed(
    raw_id: str | None,
    item: VitalReadingCreate,
    existing: VitalReading,
    dosing_session: DosingSession,
    where: str,
) -> ReadingResult:
    """A reading whose id is taken (``where``: already stored, or earlier in this batch): a
    duplicate if it is the same reading, else refused."""
    differences = _differences(existing, dosing_session, item)
    if not differences:
        return ReadingResult(raw_id, "duplicate", reading=existing)
    message = (
        f"reading {item.id} is {where}, and this one differs in {' and '.join(differences)}; "
        "a reading id is never reused: give a new reading a new id"
    )
    conflict = Conflict(message, errors=[{"field": "id", "message": message}])
    return ReadingResult(raw_id, "rejected", error=conflict)


def _ingest(
    session: Session,
    dosing_session: DosingSession,
    items: list[tuple[str | None, VitalReadingCreate | VigilError]],
    source_default: str,
    *,
    received_at: datetime | None = None,
) -> BatchResult:
    protocol = protocols.definition_of(session, dosing_session.protocol_version_id)
    received_at = received_at or clock.utcnow()
    # a device's request: its clock offset, measured as it was authenticated (app/auth/deps.py)
    offset: Offset | None = session.info.get("device_clock")
    in_this_batch: dict[uuid.UUID, VitalReading] = {}
    refused: set[uuid.UUID] = set()
    new_rows: list[VitalReading] = []
    result = BatchResult()
    for raw_id, item in items:
        if isinstance(item, VigilError):
            result.results.append(ReadingResult(raw_id, "rejected", error=item))
            continue
        earlier = in_this_batch.get(item.id)
        if earlier is not None:
            where = "earlier in this batch"
            result.results.append(_replayed(raw_id, item, earlier, dosing_session, where))
            continue
        problems = reading_problems(item) + _context_problems(
            item, dosing_session, protocol, received_at, offset
        )
        if problems:
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            error = InvalidInput(detail, errors=problems)
            result.results.append(ReadingResult(raw_id, "rejected", error=error))
            refused.add(item.id)
            continue
        row = _row(item, dosing_session, received_at, source_default, offset)
        in_this_batch[item.id] = row
        new_rows.append(row)
        result.results.append(ReadingResult(raw_id, "accepted", reading=row))
    # The insert skips an id already stored (a tablet resending, or retrying before our answer
    # reached it, even while another request stores it). Those readings, and refused ones whose
    # id is stored, are judged against what is stored: an identical one is a duplicate.
    taken_ids = {row.id for row in insert_audited(session, new_rows)}
    new_rows = [row for row in new_rows if row.id not in taken_ids]
    stored = _stored(session, taken_ids | (refused - {row.id for row in new_rows}))
    for i, (raw_id, item) in enumerate(items):
        if isinstance(item, VitalReadingCreate) and item.id in stored:
            result.results[i] = _replayed(
                raw_id, item, stored[item.id], dosing_session, "already stored"
            )
    if not new_rows:
        return result
    metrics.count_readings(session, len(new_rows))  # once the request's transaction commits
    if offset is not None:
        device_clock.flag_readings(session, dosing_session, offset, new_rows, received_at)
    # One evaluation per batch, in this transaction: the readings and their alerts commit
    # together or not at all. Findings before the earliest new reading (as reported, or as
    # corrected for its device's clock) cannot have changed.
    since = min(min(row.measured_at, row.corrected_measured_at) for row in new_rows)
    judgment = evaluation.judge_session(session, dosing_session, received_at, since=since)
    # readings that arrive late may meet due times already found overdue: take those back
    disproval.disprove_overdue(session, dosing_session, new_rows, judgment)
    return result


# Built once, the ids bound at execution (docs/architecture.md, "statements built once").
_STORED = select(VitalReading).where(VitalReading.id.in_(bindparam("ids", expanding=True)))


def _stored(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, VitalReading]:
    """The readings already stored under any of these ids, in one query."""
    if not ids:
        return {}
    rows = session.scalars(_STORED, {"ids": list(ids)})
    return {row.id: row for row in rows}


# --- reading back, correcting -------------------------------------------------------------------


def enter_in_error(session: Session, reading: VitalReading, reason: str) -> VitalReading:
    """Mark a reading entered in error: kept forever, audited with the reason."""
    if reading.record_status == RecordStatus.ENTERED_IN_ERROR:
        raise Conflict(
            f"vital reading {reading.id} is already marked entered in error "
            f"({reading.error_reason})"
        )
    with change_reason(session, reason, "entered_in_error"):
        reading.record_status = RecordStatus.ENTERED_IN_ERROR.value
        reading.error_reason = reason
    # Without the reading the session's timeline changes all along (a due time it met is now
    # missed, a run of readings it broke is now unbroken): judge the whole session again, and
    # withdraw what the reading was evidence for.
    dosing_session = dosing.get(session, reading.dosing_session_id)
    withdrawal.record_entered_in_error(session, reading.id, reason, [dosing_session])
    return reading
