"""Row builders: each yields the rows of one SDTM dataset, as tuples in the order of its
variables (``metadata``), streamed from the database (``yield_per``: one batch of records in
memory, never a whole study).

``--SEQ`` is stable across exports: it is derived from the order the records were created in,
per subject, counting the records entered in error too (they are left out of the rows, leaving a
gap), so a record added later, or one marked entered in error, never renumbers the others.
Creation order: the time-ordered (UUIDv7) id of doses and adverse events; for vital readings,
whose id is the tablet's UUID, the server's ``received_at`` (then the id). VSSEQ is
``reading number * 10 + test slot`` (SYSBP 1 ... OXYSAT 6), so a reading's tests keep their numbers
whichever of them it holds.

Times (``--DTC``) are ISO 8601 in the site's local clock time, without an offset, as the SDTMIG
describes; the site's zone is its ``timezone``.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.auth.blinding import MASKED
from app.clinical.measures import MEASURES
from app.exports.sdtm import long_text, normal_ranges, time_points
from app.models import (
    AdverseEvent,
    Dose,
    DosingSession,
    Participant,
    ProtocolVersion,
    Site,
    Study,
    Visit,
    VitalReading,
)
from app.protocols.schema import ReferenceRange
from app.protocols.service import definition_of
from app.rules.overdue import DueTime, due_times
from app.vocabulary import RecordStatus

Row = tuple[Any, ...]
BATCH = 2000
VALID = RecordStatus.VALID.value
TESTS = tuple(MEASURES.values())  # VS test slots 1..6, in this order
SLOTS_PER_READING = 10
_FAHRENHEIT = frozenset({"F", "[degF]"})

_SEVERITY = {"mild": "MILD", "moderate": "MODERATE", "severe": "SEVERE"}
_ACTION = {
    "dose_not_changed": "DOSE NOT CHANGED",
    "dose_withheld": "DRUG INTERRUPTED",
    "drug_withdrawn": "DRUG WITHDRAWN",
    "not_applicable": "NOT APPLICABLE",
    "unknown": "UNKNOWN",
}
_OUTCOME = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
# AE seriousness flags in the order of the AE variables (AESCONG ... AESMIE)
_CRITERIA = (
    "congenital_anomaly",
    "disability",
    "death",
    "hospitalisation",
    "life_threatening",
    "important_medical_event",
)


@dataclass
class ExportCounts:
    """What one export wrote and what it left out, for the audit event and the manifest."""

    rows: int = 0
    entered_in_error: int = 0  # records left out because they were marked entered in error
    uncoded: int = 0  # AEs without a dictionary-derived term (AEDECOD empty)
    uncoded_aespids: list[str] = field(default_factory=list)  # their AESPIDs
    split_terms: int = 0  # AETERMs longer than 200 characters, continued in SUPPAE


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_dtc(moment: datetime | None, zone: str) -> str:
    """``moment`` as ISO 8601 text in the site's local clock time ('' when absent)."""
    if moment is None:
        return ""
    return moment.astimezone(_zone(zone)).strftime("%Y-%m-%dT%H:%M:%S")


def _dtc_on(day: date | None) -> str:
    return day.isoformat() if day is not None else ""


def usubjid(study_code: str, subject_id: str) -> str:
    return f"{study_code}-{subject_id}"


def _streamed(session: Session, statement: Any) -> Iterator[Any]:
    yield from session.execute(statement.execution_options(yield_per=BATCH))


def _arm_labels(session: Session, study: Study) -> dict[uuid.UUID, dict[str, str]]:
    """{protocol version id: {arm code: arm label}} for the study's protocol."""
    versions = session.scalars(
        select(ProtocolVersion).where(ProtocolVersion.protocol_key == study.protocol_key)
    )
    return {
        version.id: {
            arm["code"]: arm.get("label", arm["code"]) for arm in version.definition.get("arms", [])
        }
        for version in versions
    }


def _first_and_last_doses(study: Study) -> Any:
    return (
        select(
            DosingSession.participant_id,
            func.min(Dose.administered_at).label("first_at"),
            func.max(Dose.administered_at).label("last_at"),
        )
        .join(Dose, Dose.dosing_session_id == DosingSession.id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .where(Participant.study_id == study.id, Dose.record_status == VALID)
        .group_by(DosingSession.participant_id)
    )


def dm_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per participant. RFSTDTC is the first exposure (RFXSTDTC), RFXENDTC the last:
    both from the valid doses that EX lists, so DM and EX agree."""
    labels = _arm_labels(session, study)
    doses = _first_and_last_doses(study).subquery()
    statement = (
        select(Participant, Site.code, Site.timezone, doses.c.first_at, doses.c.last_at)
        .join(Site, Site.id == Participant.site_id)
        .outerjoin(doses, doses.c.participant_id == Participant.id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id)
    )
    for participant, site_code, zone, first_at, last_at in _streamed(session, statement):
        arm_code = participant.arm_code
        if arm_code is None:
            arm = None
        elif unblinded:
            arm = labels.get(participant.protocol_version_id, {}).get(arm_code, arm_code)
        else:
            arm_code = arm = MASKED
        first = local_dtc(first_at, zone)
        counts.rows += 1
        yield (
            study.code,
            "DM",
            usubjid(study.code, participant.subject_id),
            participant.subject_id,
            first,
            first,
            local_dtc(last_at, zone),
            _dtc_on(participant.consented_on),
            site_code,
            participant.age_years,
            "YEARS",
            participant.sex,
            arm_code or "",
            arm or "",
            arm_code or "",
            arm or "",
            "" if arm_code else "NOT ASSIGNED",
        )


def ex_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per valid dose. EXTRT names the arm's treatment for an unblinded reader and is
    masked otherwise; EXDOSE is the amount recorded, the same in both arms by design."""
    statement = (
        select(Dose, Participant.subject_id, Participant.arm_code, Site.timezone, Visit)
        .join(DosingSession, DosingSession.id == Dose.dosing_session_id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .join(Visit, Visit.id == DosingSession.visit_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id, Dose.id)
    )
    numbers: dict[str, int] = defaultdict(int)
    for dose, subject_id, arm_code, zone, visit in _streamed(session, statement):
        numbers[subject_id] += 1
        if dose.record_status != VALID:
            counts.entered_in_error += 1
            continue
        given = local_dtc(dose.administered_at, zone)
        counts.rows += 1
        yield (
            study.code,
            "EX",
            usubjid(study.code, subject_id),
            numbers[subject_id],
            str(dose.id),
            (arm_code or "") if unblinded else MASKED,
            dose.amount_mg,
            "mg",
            "CAPSULE",
            "ORAL",
            float(visit.sequence),
            visit.name,
            given,
            given,
        )


def _original(reading_reported: dict[str, Any], code: str) -> tuple[Any, str] | None:
    for observation in reading_reported.get("observations", []):
        if observation.get("code") == code:
            unit = observation.get("unit", "")
            return observation.get("value"), "F" if unit in _FAHRENHEIT else MEASURES[code].unit
    return None


def _text(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class _Schedule:
    """What a dosing session's readings are planned against: its initial dose and the due times
    of its protocol version, per measure."""

    initial_dose_at: datetime | None
    due: dict[str, list[DueTime]]
    ranges: dict[str, ReferenceRange]


def _schedule(session: Session, dosing_session_id: uuid.UUID, version_id: uuid.UUID) -> _Schedule:
    initial_at = session.scalar(
        select(func.min(Dose.administered_at)).where(
            Dose.dosing_session_id == dosing_session_id,
            Dose.kind == "initial",
            Dose.record_status == VALID,
        )
    )
    protocol = definition_of(session, version_id)
    due = due_times(protocol.vitals_schedule, list(MEASURES))
    ranges = {reference.measure: reference for reference in protocol.reference_ranges}
    return _Schedule(initial_at, time_points.by_measure(due), ranges)


def vs_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per test per valid reading; VSSPID is the reading's id."""
    columns = [getattr(VitalReading, measure.column) for measure in TESTS]
    statement = (
        select(
            Participant.subject_id,
            Site.timezone,
            Visit.sequence,
            Visit.name,
            VitalReading.id,
            VitalReading.measured_at,
            VitalReading.record_status,
            VitalReading.reported,
            VitalReading.dosing_session_id,
            DosingSession.protocol_version_id,
            *columns,
        )
        .join(DosingSession, DosingSession.id == VitalReading.dosing_session_id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .join(Visit, Visit.id == DosingSession.visit_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id, VitalReading.received_at, VitalReading.id)
    )
    numbers: dict[str, int] = defaultdict(int)
    schedules: dict[uuid.UUID, _Schedule] = {}  # one per dosing session: a few per participant
    for (
        subject_id,
        zone,
        visit_number,
        visit_name,
        reading_id,
        measured_at,
        status,
        reported,
        dosing_session_id,
        version_id,
        *values,
    ) in _streamed(session, statement):
        numbers[subject_id] += 1
        if status != VALID:
            counts.entered_in_error += 1
            continue
        schedule = schedules.get(dosing_session_id)
        if schedule is None:
            schedule = schedules[dosing_session_id] = _schedule(
                session, dosing_session_id, version_id
            )
        reference = local_dtc(schedule.initial_dose_at, zone)
        subject, dtc, spid = (
            usubjid(study.code, subject_id),
            local_dtc(measured_at, zone),
            str(reading_id),
        )
        for slot, (measure, value) in enumerate(zip(TESTS, values, strict=True), start=1):
            if value is None:
                continue
            original = _original(reported, measure.code)
            result, unit = original if original else (value, measure.unit)
            point = time_points.answered(
                schedule.due.get(measure.code, []), schedule.initial_dose_at, measured_at
            )
            normal = normal_ranges.range_values(schedule.ranges.get(measure.code), value, unit)
            counts.rows += 1
            yield (
                study.code,
                "VS",
                subject,
                numbers[subject_id] * SLOTS_PER_READING + slot,
                spid,
                measure.code,
                measure.name,
                _text(result),
                unit,
                normal.original_low,
                normal.original_high,
                _text(value),
                value,
                measure.unit,
                normal.low,
                normal.high,
                normal.indicator,
                float(visit_number),
                visit_name,
                dtc,
                point.name if point else "",
                point.minute if point else None,
                point.elapsed if point else "",
                time_points.REFERENCE if point else "",
                reference if point else "",
            )


@dataclass(frozen=True)
class NumberedEvent:
    """A valid adverse event with its AESEQ, subject, site zone and the initial dose of the
    dosing session it began in (None: no session, or a session without a valid initial dose)."""

    seq: int
    event: AdverseEvent
    subject_id: str
    zone: str
    initial_dose_at: datetime | None


def _initial_doses() -> Any:
    return (
        select(
            Dose.dosing_session_id,
            func.min(Dose.administered_at).label("initial_at"),
        )
        .where(Dose.kind == "initial", Dose.record_status == VALID)
        .group_by(Dose.dosing_session_id)
        .subquery()
    )


def numbered_adverse_events(
    session: Session, study: Study, counts: ExportCounts
) -> Iterator[NumberedEvent]:
    """The study's valid adverse events in AE order, numbered as AE numbers them (AE and SUPPAE
    agree on AESEQ); the ones entered in error are counted and keep their number."""
    initial = _initial_doses()
    statement = (
        select(AdverseEvent, Participant.subject_id, Site.timezone, initial.c.initial_at)
        .join(Participant, Participant.id == AdverseEvent.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .outerjoin(initial, initial.c.dosing_session_id == AdverseEvent.dosing_session_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id, AdverseEvent.id)
    )
    numbers: dict[str, int] = defaultdict(int)
    for event, subject_id, zone, initial_at in _streamed(session, statement):
        numbers[subject_id] += 1
        if event.record_status != VALID:
            counts.entered_in_error += 1
            continue
        yield NumberedEvent(numbers[subject_id], event, subject_id, zone, initial_at)


def start_relative_to_dose(onset_at: datetime, initial_dose_at: datetime | None) -> str:
    """AESTRTPT: when the event began against the initial dose of its dosing session."""
    if initial_dose_at is None:
        return ""
    if onset_at < initial_dose_at:
        return "BEFORE"
    return "COINCIDENT" if onset_at == initial_dose_at else "AFTER"


def _coding(event: AdverseEvent) -> tuple[Any, ...]:
    """AELLT, AELLTCD, AEDECOD (the PT), AEPTCD, AEHLT ... AESOCCD; the primary SOC is both
    AEBODSYS and AESOC."""
    if not event.coded:
        return ("", None, "", None, "", None, "", None, "", None, "", None)
    llt, pt, hlt, hlgt, soc = (
        (getattr(event, f"meddra_{level}"), int(getattr(event, f"meddra_{level}_code")))
        for level in ("llt", "pt", "hlt", "hlgt", "soc")
    )
    return (*llt, pt[0], pt[1], *hlt, *hlgt, *soc, *soc)


def ae_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per valid adverse event. AEDECOD is the MedDRA PT once the event is coded; an
    uncoded event leaves the dictionary variables empty and is counted (with its AESPID) for the
    manifest's conformance gaps. An AETERM over 200 characters continues in SUPPAE. AESTRTPT
    and AESTTPT place the onset against the initial dose of the event's dosing session."""
    for numbered in numbered_adverse_events(session, study, counts):
        event, zone = numbered.event, numbered.zone
        criteria = set(event.seriousness_criteria or [])
        parts = long_text.split(event.verbatim_term)
        if len(parts) > 1:
            counts.split_terms += 1
        if not event.coded:
            counts.uncoded += 1
            counts.uncoded_aespids.append(str(event.id))
        relative = start_relative_to_dose(event.onset_at, numbered.initial_dose_at)
        counts.rows += 1
        yield (
            study.code,
            "AE",
            usubjid(study.code, numbered.subject_id),
            numbered.seq,
            str(event.id),
            parts[0],
            *_coding(event),
            _SEVERITY.get(event.severity, event.severity.upper()),
            "Y" if criteria else "N",
            _ACTION.get(event.action_taken, event.action_taken.upper()),
            event.relatedness.replace("_", " ").upper(),
            _OUTCOME.get(event.outcome, event.outcome.upper()),
            *("Y" if criterion in criteria else "N" for criterion in _CRITERIA),
            str(event.ctcae_grade) if event.ctcae_grade is not None else "",
            local_dtc(event.onset_at, zone),
            local_dtc(event.end_at, zone),
            relative,
            local_dtc(numbered.initial_dose_at, zone) if relative else "",
        )


BUILDERS = {"DM": dm_rows, "EX": ex_rows, "VS": vs_rows, "AE": ae_rows}


def _count(session: Session, statement: Select[Any]) -> int:
    return int(session.scalar(statement) or 0)


def row_count(session: Session, study: Study, domain: str) -> int:
    """How many rows the builder of ``domain`` yields, counted in the database (the NDJSON form
    states it before the rows). Run in the builder's transaction, it sees the same records."""
    of_study = Participant.study_id == study.id
    if domain == "DM":
        return _count(session, select(func.count()).select_from(Participant).where(of_study))
    if domain == "AE":
        return _count(
            session,
            select(func.count())
            .select_from(AdverseEvent)
            .join(Participant, Participant.id == AdverseEvent.participant_id)
            .where(of_study, AdverseEvent.record_status == VALID),
        )
    if domain == "EX":
        counted: Any = func.count()
        source: Any = Dose
        on: Any = DosingSession.id == Dose.dosing_session_id
        status: Any = Dose.record_status
    else:
        counted = sum(func.count(getattr(VitalReading, m.column)) for m in TESTS)
        source, on = VitalReading, DosingSession.id == VitalReading.dosing_session_id
        status = VitalReading.record_status
    return _count(
        session,
        select(counted)
        .select_from(source)
        .join(DosingSession, on)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .where(of_study, status == VALID),
    )
