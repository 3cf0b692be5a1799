"""What a session report shows, read from the database into plain data (``SessionReport``), so
the drawing code reads no database and tests compare what is plotted with what is stored.

Times on the x axis are minutes since the initial dose (since the session's start when no
initial dose was given); the site's time zone labels them with local clock times. Readings,
doses and the like that were entered in error are left out (and counted). Nothing here holds an
arm, a note's text or a participant's name: the participant is their subject id; staff appear
by the name they sign with (21 CFR 11.50)."""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.clinical.measures import MEASURES
from app.exports.reports.limits import Limit, protocol_limits
from app.models import (
    AdverseEvent,
    Alert,
    Dose,
    DosingSession,
    Participant,
    ProtocolVersion,
    Signature,
    Site,
    Study,
    TherapistNote,
    User,
    Visit,
    VitalReading,
)
from app.protocols import service as protocols
from app.vocabulary import RecordStatus

# The measures a session report plots, in the order of its panels.
PLOTTED = ("SYSBP", "DIABP", "PULSE", "TEMP", "OXYSAT")


@dataclass(frozen=True, slots=True)
class Series:
    code: str
    name: str
    unit: str
    minutes: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class DoseMark:
    kind: str  # initial | supplemental
    amount_mg: float
    at: datetime
    minute: float


@dataclass(frozen=True, slots=True)
class AlertMark:
    rule_id: str
    title: str
    severity: str
    status: str
    raised_at: datetime
    minute: float
    acknowledged_at: datetime | None
    acknowledged_minute: float | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_minute: float | None
    resolved_by: str | None


@dataclass(frozen=True, slots=True)
class Attestation:
    what: str
    who: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class SignatureLine:
    record: str  # what was signed: "dosing session", "adverse event", "note"
    printed_name: str
    meaning: str
    signed_at: datetime
    status: str


@dataclass(frozen=True)
class SessionReport:
    session_id: uuid.UUID
    study_code: str
    subject_id: str
    site_code: str
    timezone: str
    visit: str
    protocol: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    origin: datetime  # minute 0 of the x axis
    origin_label: str  # "initial dose" | "session start"
    series: dict[str, Series]
    limits: dict[str, list[Limit]]
    doses: list[DoseMark]
    alerts: list[AlertMark]
    attestations: list[Attestation]
    signatures: list[SignatureLine]
    readings: int
    readings_entered_in_error: int
    adverse_events: int

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def minute(self, at: datetime) -> float:
        return (at - self.origin).total_seconds() / 60

    def local(self, at: datetime | None) -> str:
        return "" if at is None else at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")


def _everyone() -> Callable[[str], bool]:
    return lambda _kind: True


def _names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {each for each in ids if each is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}


def _series(readings: list[VitalReading], origin: datetime) -> dict[str, Series]:
    out = {}
    for code in PLOTTED:
        measure = MEASURES[code]
        points = [
            ((r.measured_at - origin).total_seconds() / 60, value)
            for r in readings
            if (value := getattr(r, measure.column)) is not None
        ]
        out[code] = Series(
            code,
            measure.name,
            measure.unit,
            tuple(minute for minute, _ in points),
            tuple(value for _, value in points),
        )
    return out


def _signatures(
    session: Session, dosing_session: DosingSession, with_notes: bool
) -> list[SignatureLine]:
    events = select(AdverseEvent.id).where(AdverseEvent.dosing_session_id == dosing_session.id)
    records = [
        (Signature.entity_type == "dosing_sessions") & (Signature.entity_id == dosing_session.id),
        (Signature.entity_type == "adverse_events") & Signature.entity_id.in_(events),
    ]
    if with_notes:
        notes = select(TherapistNote.id).where(TherapistNote.dosing_session_id == dosing_session.id)
        records.append(
            (Signature.entity_type == "therapist_notes") & Signature.entity_id.in_(notes)
        )
    what = {
        "dosing_sessions": "dosing session",
        "adverse_events": "adverse event",
        "therapist_notes": "note",
    }
    found = session.scalars(select(Signature).where(or_(*records)).order_by(Signature.signed_at))
    return [
        SignatureLine(what[s.entity_type], s.printed_name, s.meaning, s.signed_at, s.status)
        for s in found
    ]


def _attestations(ds: DosingSession, names: dict[uuid.UUID, str]) -> list[Attestation]:
    def name(user_id: uuid.UUID | None) -> str:
        return names.get(user_id, "") if user_id is not None else ""

    return [
        Attestation("lead therapist present", name(ds.lead_therapist_id), ds.lead_present_at),
        Attestation("co-therapist present", name(ds.co_therapist_id), ds.co_present_at),
        Attestation("therapist pair present", "", ds.therapists_present_at),
        Attestation(
            "return to baseline", name(ds.baseline_attested_by_id), ds.baseline_attested_at
        ),
    ]


def session_report(
    session: Session,
    dosing_session: DosingSession,
    *,
    sees_alert_kind: Callable[[str], bool] | None = None,
    sees_notes: bool = True,
) -> SessionReport:
    """The report of one dosing session, with the alerts of the kinds the reader sees (all by
    default) and the signatures of the session's notes only for a reader of notes."""
    sees_alert_kind = sees_alert_kind or _everyone()
    ds = dosing_session
    participant = session.get_one(Participant, ds.participant_id)
    site = session.get_one(Site, participant.site_id)
    study = session.get_one(Study, participant.study_id)
    visit = session.get_one(Visit, ds.visit_id)
    version = session.get_one(ProtocolVersion, ds.protocol_version_id)
    all_readings = list(
        session.scalars(
            select(VitalReading)
            .where(VitalReading.dosing_session_id == ds.id)
            .order_by(VitalReading.measured_at, VitalReading.id)
        )
    )
    readings = [r for r in all_readings if r.record_status == RecordStatus.VALID]
    doses = list(
        session.scalars(
            select(Dose)
            .where(Dose.dosing_session_id == ds.id, Dose.record_status == RecordStatus.VALID)
            .order_by(Dose.administered_at)
        )
    )
    initial = next((dose for dose in doses if dose.kind == "initial"), None)
    if initial is not None:
        origin, origin_label = initial.administered_at, "initial dose"
    else:
        fallback = ds.started_at or (readings[0].measured_at if readings else ds.created_at)
        origin, origin_label = fallback, "session start"
    alerts = [
        alert
        for alert in session.scalars(
            select(Alert).where(Alert.dosing_session_id == ds.id).order_by(Alert.first_found_at)
        )
        if sees_alert_kind(alert.kind)
    ]
    names = _names(
        session,
        [
            ds.lead_therapist_id,
            ds.co_therapist_id,
            ds.baseline_attested_by_id,
            *(a.acknowledged_by_id for a in alerts),
            *(a.resolved_by_id for a in alerts),
        ],
    )

    def at_minute(at: datetime) -> float:
        return (at - origin).total_seconds() / 60

    def minute(at: datetime | None) -> float | None:
        return None if at is None else at_minute(at)

    events = session.scalars(
        select(AdverseEvent.id).where(
            AdverseEvent.dosing_session_id == ds.id,
            AdverseEvent.record_status == RecordStatus.VALID,
        )
    ).all()
    return SessionReport(
        session_id=ds.id,
        study_code=study.code,
        subject_id=participant.subject_id,
        site_code=site.code,
        timezone=site.timezone,
        visit=f"{visit.code} ({visit.name})",
        protocol=f"{version.protocol_key} version {version.version_label}",
        status=ds.status,
        started_at=ds.started_at,
        ended_at=ds.ended_at,
        origin=origin,
        origin_label=origin_label,
        series=_series(readings, origin),
        limits=protocol_limits(protocols.definition(version)),
        doses=[
            DoseMark(d.kind, d.amount_mg, d.administered_at, at_minute(d.administered_at))
            for d in doses
        ],
        alerts=[
            AlertMark(
                rule_id=a.rule_id,
                title=a.title,
                severity=a.severity,
                status=a.status,
                raised_at=a.first_found_at,
                minute=at_minute(a.first_found_at),
                acknowledged_at=a.acknowledged_at,
                acknowledged_minute=minute(a.acknowledged_at),
                acknowledged_by=names.get(a.acknowledged_by_id) if a.acknowledged_by_id else None,
                resolved_at=a.resolved_at,
                resolved_minute=minute(a.resolved_at),
                resolved_by=names.get(a.resolved_by_id) if a.resolved_by_id else None,
            )
            for a in alerts
        ],
        attestations=_attestations(ds, names),
        signatures=_signatures(session, ds, sees_notes),
        readings=len(readings),
        readings_entered_in_error=len(all_readings) - len(readings),
        adverse_events=len(events),
    )
