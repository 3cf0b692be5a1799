"""Dosing sessions: planning, the start/end lifecycle, attestations, and doses checked against the
protocol version the session runs under."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import clock
from app.alerts import evaluation
from app.audit.recorder import change_reason
from app.dosing import dose_gate, schemas
from app.dosing.schemas import DoseCreate, DosingSessionStatus, RecordStatus
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, ProtocolViolation
from app.models import Dose, DosingSession, Participant, User, Visit, user_sites
from app.participants import service as participants
from app.permissions import Role
from app.protocols import service as protocols
from app.protocols.schema import DosingSessionDefinition
from app.rules import dose_limits
from app.signatures import service as signatures
from app.signatures.schemas import SignatureRead
from app.time_bounds import Bound, ImplausibleTime, check_within, not_in_future

S = DosingSessionStatus
DOSABLE_PARTICIPANT_STATUSES = ("randomised", "in_treatment")
BASELINE_ATTESTERS = (Role.CLINICIAN.value, Role.THERAPIST.value)


# --- loading ------------------------------------------------------------------------------------


def get(session: Session, dosing_session_id: uuid.UUID) -> DosingSession:
    dosing_session = session.get(DosingSession, dosing_session_id)
    if dosing_session is None:
        raise NotFound(f"dosing session {dosing_session_id} does not exist")
    return dosing_session


def sessions_of(session: Session, participant: Participant) -> list[DosingSession]:
    stmt = (
        select(DosingSession)
        .join(Visit, Visit.id == DosingSession.visit_id)
        .where(DosingSession.participant_id == participant.id)
        .order_by(Visit.sequence)
    )
    return list(session.scalars(stmt))


def doses_of(session: Session, dosing_session: DosingSession) -> list[Dose]:
    """Every dose of the session, entered-in-error ones included, in the order given."""
    stmt = (
        select(Dose)
        .where(Dose.dosing_session_id == dosing_session.id)
        .order_by(Dose.administered_at, Dose.id)
    )
    return list(session.scalars(stmt))


def dosing_definition(session: Session, dosing_session: DosingSession) -> DosingSessionDefinition:
    visit = participants.get_visit(session, dosing_session.visit_id)
    protocol = protocols.definition_of(session, dosing_session.protocol_version_id)
    definition = protocol.dosing_for_visit(visit.code)
    if definition is None:  # create_session refuses such a session; the protocol is immutable
        raise ProtocolViolation(
            f"the protocol version of this session has no dosing at {visit.code}"
        )
    return definition


def _lock(session: Session, dosing_session: DosingSession) -> None:
    """Reload the row FOR UPDATE, so concurrent requests on one session take turns."""
    session.flush()
    session.refresh(dosing_session, with_for_update=True)


def _valid(doses: Sequence[Dose]) -> list[Dose]:
    return [dose for dose in doses if dose.record_status == RecordStatus.VALID.value]


def _check_time(field: str, value: datetime, earliest: Bound[datetime] | None) -> None:
    """Refuse a time before ``earliest`` or later than now (plus clock skew), naming the field."""
    try:
        check_within(value, earliest=earliest, latest=not_in_future())
    except ImplausibleTime as exc:
        raise _field_error(field, str(exc)) from None


def _after_doses(dosing_session: DosingSession, doses: Sequence[Dose]) -> Bound[datetime]:
    """The start of the session, or its last valid dose once one is given."""
    assert dosing_session.started_at is not None
    last = max((d.administered_at for d in doses), default=None)
    if last is None:
        return Bound(dosing_session.started_at, "the session started")
    return Bound(last, "the last dose")


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[{"field": field, "message": message}])


def _require_dosable(participant: Participant) -> None:
    if participant.status not in DOSABLE_PARTICIPANT_STATUSES:
        raise Conflict(
            f"participant {participant.subject_id} is {participant.status}; dosing sessions are "
            "for randomised or in_treatment participants"
        )


# --- lifecycle ----------------------------------------------------------------------------------


def create_session(session: Session, participant: Participant, visit: Visit) -> DosingSession:
    """Plan the dosing session of one of the participant's experimental visits."""
    _require_dosable(participant)
    if visit.participant_id != participant.id:
        raise _field_error(
            "visit_id", f"visit {visit.id} is not a visit of participant {participant.subject_id}"
        )
    if visit.kind != "experimental":
        raise _field_error(
            "visit_id",
            f"visit {visit.code} is a {visit.kind} visit; dosing sessions are held at "
            "experimental visits",
        )
    if visit.status == "missed":
        raise Conflict(f"visit {visit.code} was recorded as missed; it has no dosing session")
    version = protocols.get_version(session, participant.protocol_version_id)
    if protocols.definition(version).dosing_for_visit(visit.code) is None:
        raise ProtocolViolation(
            f"protocol {version.protocol_key} version {version.version_label} defines no dosing "
            f"at visit {visit.code}"
        )
    existing = session.scalar(select(DosingSession.id).where(DosingSession.visit_id == visit.id))
    if existing is not None:
        raise Conflict(f"visit {visit.code} already has dosing session {existing}")
    dosing_session = DosingSession(
        participant_id=participant.id,
        visit_id=visit.id,
        protocol_version_id=version.id,
        status=S.PLANNED.value,
    )
    try:
        with session.begin_nested():  # a concurrent create of the same visit loses here
            session.add(dosing_session)
            session.flush()
    except IntegrityError:
        raise Conflict(f"visit {visit.code} already has a dosing session") from None
    return dosing_session


def start(session: Session, dosing_session: DosingSession, started_at: datetime) -> DosingSession:
    _lock(session, dosing_session)
    if dosing_session.status != S.PLANNED.value:
        raise Conflict(
            f"dosing session is {dosing_session.status}; only a planned session can start"
        )
    participant = participants.get(session, dosing_session.participant_id)
    _require_dosable(participant)
    _check_time("started_at", started_at, participants.consent_time(session, participant))
    running = session.scalar(
        select(DosingSession.id).where(
            DosingSession.participant_id == participant.id,
            DosingSession.status == S.IN_PROGRESS.value,
        )
    )
    if running is not None:
        raise Conflict(
            f"participant {participant.subject_id} already has dosing session {running} in "
            "progress; end it first"
        )
    dosing_session.status = S.IN_PROGRESS.value
    dosing_session.started_at = started_at
    session.flush()
    participants.start_treatment(session, participant)
    return dosing_session


def end(session: Session, dosing_session: DosingSession, ended_at: datetime) -> DosingSession:
    _lock(session, dosing_session)
    if dosing_session.status != S.IN_PROGRESS.value:
        raise Conflict(
            f"dosing session is {dosing_session.status}; only a session in progress can end"
        )
    doses = _valid(doses_of(session, dosing_session))
    _check_time("ended_at", ended_at, _after_doses(dosing_session, doses))
    dosing_session.status = S.ENDED.value
    dosing_session.ended_at = ended_at
    session.flush()
    return dosing_session


# --- attestations -------------------------------------------------------------------------------


def _user_problem(
    session: Session, user_id: uuid.UUID, roles: Sequence[str], site_id: uuid.UUID
) -> str | None:
    user = session.get(User, user_id)
    if user is None:
        return f"user {user_id} does not exist"
    if not user.active:
        return f"user {user.username} is not active"
    if user.role not in roles:
        return f"user {user.username} is a {user.role}, not a {' or '.join(roles)}"
    at_site = session.scalar(
        select(user_sites.c.user_id).where(
            user_sites.c.user_id == user.id, user_sites.c.site_id == site_id
        )
    )
    if at_site is None:
        return f"user {user.username} does not work at the participant's site"
    return None


def _refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise InvalidInput(
            "; ".join(f"{field}: {message}" for field, message in problems),
            errors=[{"field": field, "message": message} for field, message in problems],
        )


def attest_therapists(
    session: Session,
    dosing_session: DosingSession,
    lead_therapist_id: uuid.UUID,
    co_therapist_id: uuid.UUID,
    present_at: datetime,
) -> DosingSession:
    """Attest, with a timestamp, that the co-therapist pair is present with the participant.

    Allowed while the session is planned or in progress, never backfilled after it ended; a new
    attestation replaces the pair, the audit trail keeps the earlier one.
    """
    _lock(session, dosing_session)
    if dosing_session.status == S.ENDED.value:
        raise Conflict(
            "therapist presence is attested while the session is planned or in progress; this "
            "session has ended"
        )
    participant = participants.get(session, dosing_session.participant_id)
    therapist = (Role.THERAPIST.value,)
    problems: list[tuple[str, str]] = []
    for field, user_id in (
        ("lead_therapist_id", lead_therapist_id),
        ("co_therapist_id", co_therapist_id),
    ):
        problem = _user_problem(session, user_id, therapist, participant.site_id)
        if problem:
            problems.append((field, problem))
    if lead_therapist_id == co_therapist_id:
        problems.append(
            ("co_therapist_id", "the co-therapist must be a different person from the lead")
        )
    _refuse(problems)
    _check_time("present_at", present_at, participants.consent_time(session, participant))
    with change_reason(session, "co-therapist pair present", "attest_therapists"):
        dosing_session.lead_therapist_id = lead_therapist_id
        dosing_session.co_therapist_id = co_therapist_id
        dosing_session.therapists_present_at = present_at
    return dosing_session


def attest_baseline(
    session: Session,
    dosing_session: DosingSession,
    attested_by_id: uuid.UUID,
    attested_at: datetime,
    note: str | None,
) -> DosingSession:
    """Attest that acute effects have worn off and vitals are back near baseline.

    Once per session, by a clinician or therapist of the site, once the session has started:
    usually just before the therapists end it, or recorded just after. It cannot precede the
    last dose, and no dose can be recorded after it.
    """
    _lock(session, dosing_session)
    if dosing_session.status == S.PLANNED.value:
        raise Conflict("the session has not started; there is no return to baseline to attest")
    if dosing_session.baseline_attested_at is not None:
        raise Conflict(
            "return to baseline was already attested at "
            f"{dosing_session.baseline_attested_at.isoformat()}"
        )
    participant = participants.get(session, dosing_session.participant_id)
    problem = _user_problem(session, attested_by_id, BASELINE_ATTESTERS, participant.site_id)
    _refuse([("attested_by_id", problem)] if problem else [])
    doses = _valid(doses_of(session, dosing_session))
    _check_time("attested_at", attested_at, _after_doses(dosing_session, doses))
    with change_reason(session, note or "vitals back near baseline", "attest_baseline"):
        dosing_session.baseline_attested_by_id = attested_by_id
        dosing_session.baseline_attested_at = attested_at
        dosing_session.baseline_attestation_note = note
    return dosing_session


# --- doses --------------------------------------------------------------------------------------


GATE_OVERRIDE = "gate override: "


def record_dose(
    session: Session,
    dosing_session: DosingSession,
    data: DoseCreate,
    *,
    overridden_by_clinician: bool = False,
) -> Dose:
    """Record a dose if the protocol allows it, or as a deviation when a reason is given.

    A supplemental dose is also judged by the dose gate as known at its administered_at: while
    the gate's rules (readings, open alerts) close it, the dose is refused (409) unless a
    clinician overrides it with gate_override_reason. The window, amount and dose-count reasons
    of the gate are the protocol checks above, answered by deviation_reason.
    """
    _lock(session, dosing_session)
    if dosing_session.status != S.IN_PROGRESS.value:
        raise Conflict(
            f"dosing session is {dosing_session.status}; doses are recorded while it is in progress"
        )
    assert dosing_session.started_at is not None
    started = Bound(dosing_session.started_at, "the session started")
    _check_time("administered_at", data.administered_at, started)
    if dosing_session.baseline_attested_at is not None:
        raise Conflict(
            "return to baseline was attested at "
            f"{dosing_session.baseline_attested_at.isoformat()}; no dose can follow it"
        )
    valid = _valid(doses_of(session, dosing_session))
    structural = dose_limits.structural_problems(data.kind.value, data.administered_at, valid)
    if structural:
        raise ProtocolViolation(
            "; ".join(p.message for p in structural), errors=[p.as_error() for p in structural]
        )
    definition = dosing_definition(session, dosing_session)
    problems = dose_limits.protocol_problems(
        definition, data.kind.value, data.amount_mg, data.administered_at, valid
    )
    if problems and not data.deviation_reason:
        raise ProtocolViolation(
            "; ".join(p.message for p in problems)
            + "; to record a dose given against the protocol, send deviation_reason",
            errors=[p.as_error() for p in problems],
        )
    if data.deviation_reason and not problems:
        raise _field_error(
            "deviation_reason",
            "the dose follows the protocol, so there is no deviation to explain; leave it out",
        )
    gate_reasons: list[str] = []
    if data.kind.value == "supplemental":
        gate_reasons = dose_gate.clinical_gate_reasons(
            session, dosing_session, data.administered_at
        )
    _check_gate_override(gate_reasons, data, overridden_by_clinician)
    stored_reason = "; ".join(
        reason
        for reason in (
            GATE_OVERRIDE + data.gate_override_reason if data.gate_override_reason else None,
            data.deviation_reason,
        )
        if reason
    )
    dose = Dose(
        dosing_session_id=dosing_session.id,
        kind=data.kind.value,
        amount_mg=data.amount_mg,
        administered_at=data.administered_at,
        recorded_at=clock.utcnow(),
        deviation_reason=stored_reason or None,
    )
    audit_reasons = []
    if problems:
        audit_reasons.append(
            "protocol deviation: "
            + "; ".join(p.message for p in problems)
            + f". Reason given: {data.deviation_reason}"
        )
    if gate_reasons:
        audit_reasons.append(
            "supplemental dose given while the dose gate was closed ("
            + "; ".join(gate_reasons)
            + f"); clinician's override: {data.gate_override_reason}"
        )
    if audit_reasons:
        with change_reason(session, " ".join(audit_reasons)):
            session.add(dose)
    else:
        session.add(dose)
        session.flush()
    # the dose and the alerts it causes (e.g. given while the gate was closed) commit together
    evaluation.raise_alerts(session, dosing_session, clock.utcnow())
    return dose


def _check_gate_override(
    gate_reasons: list[str], data: DoseCreate, overridden_by_clinician: bool
) -> None:
    """A closed gate needs a clinician's override reason; an open one needs none."""
    if not gate_reasons:
        if data.gate_override_reason:
            raise _field_error(
                "gate_override_reason",
                "the dose gate is open (or this is not a supplemental dose), so there is "
                "nothing to override; leave it out",
            )
        return
    if not data.gate_override_reason:
        raise Conflict(
            "the supplemental dose gate is closed: "
            + "; ".join(gate_reasons)
            + ". A clinician may give it anyway with gate_override_reason",
            errors=[{"field": "gate", "message": reason} for reason in gate_reasons],
        )
    if not overridden_by_clinician:
        raise Forbidden(
            "only a clinician may override the closed supplemental dose gate ("
            + "; ".join(gate_reasons)
            + ")"
        )


def enter_dose_in_error(session: Session, dose: Dose, reason: str) -> Dose:
    """Mark a dose entered in error: kept forever, left out of totals and window checks."""
    _lock(session, get(session, dose.dosing_session_id))
    if dose.record_status == RecordStatus.ENTERED_IN_ERROR.value:
        raise Conflict(f"dose {dose.id} is already marked entered in error ({dose.error_reason})")
    with change_reason(session, reason, "entered_in_error"):
        dose.record_status = RecordStatus.ENTERED_IN_ERROR.value
        dose.error_reason = reason
    return dose


# --- the read shape -----------------------------------------------------------------------------


def present(session: Session, dosing_session: DosingSession) -> schemas.DosingSession:
    return present_many(session, [dosing_session])[0]


def present_many(
    session: Session, dosing_sessions: Sequence[DosingSession]
) -> list[schemas.DosingSession]:
    """The read shape of several sessions, with two queries for all of them."""
    if not dosing_sessions:
        return []
    ids = [ds.id for ds in dosing_sessions]
    doses: dict[uuid.UUID, list[Dose]] = defaultdict(list)
    for dose in session.scalars(
        select(Dose).where(Dose.dosing_session_id.in_(ids)).order_by(Dose.administered_at, Dose.id)
    ):
        doses[dose.dosing_session_id].append(dose)
    visit_ids = {ds.visit_id for ds in dosing_sessions}
    rows = session.execute(select(Visit.id, Visit.code).where(Visit.id.in_(visit_ids)))
    codes = {visit_id: code for visit_id, code in rows}
    signed = signatures.signatures_of(session, dosing_sessions)
    return [
        _view(session, ds, codes[ds.visit_id], doses[ds.id], signed.get(ds.id, []))
        for ds in dosing_sessions
    ]


def _view(
    session: Session,
    ds: DosingSession,
    visit_code: str,
    doses: list[Dose],
    signed: list[SignatureRead],
) -> schemas.DosingSession:
    protocol = protocols.definition_of(session, ds.protocol_version_id)
    definition = protocol.dosing_for_visit(visit_code)
    valid = _valid(doses)
    window = dose_limits.supplemental_window(definition, valid) if definition else None
    therapists = None
    if ds.lead_therapist_id and ds.co_therapist_id and ds.therapists_present_at:
        therapists = schemas.Therapists(
            lead_therapist_id=ds.lead_therapist_id,
            co_therapist_id=ds.co_therapist_id,
            present_at=ds.therapists_present_at,
        )
    baseline = None
    if ds.baseline_attested_by_id and ds.baseline_attested_at:
        baseline = schemas.BaselineAttestationRead(
            attested_by_id=ds.baseline_attested_by_id,
            attested_at=ds.baseline_attested_at,
            note=ds.baseline_attestation_note,
        )
    return schemas.DosingSession(
        id=ds.id,
        participant_id=ds.participant_id,
        visit_id=ds.visit_id,
        visit_code=visit_code,
        protocol_version_id=ds.protocol_version_id,
        status=S(ds.status),
        started_at=ds.started_at,
        ended_at=ds.ended_at,
        therapists=therapists,
        baseline_attestation=baseline,
        drug=protocol.protocol.drug.name,
        doses=[schemas.Dose.model_validate(dose) for dose in doses],
        total_mg=sum(dose.amount_mg for dose in valid),
        supplemental_window=(
            schemas.SupplementalWindow(opens_at=window[0], closes_at=window[1]) if window else None
        ),
        created_at=ds.created_at,
        signatures=signed,
    )
