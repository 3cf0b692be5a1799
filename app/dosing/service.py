"""Dosing sessions: loading, planning, the start/end lifecycle and the attestations (two
therapists present, return to baseline). Doses are recorded in doses.py, the read shape is
views.py, the supplemental dose gate dose_gate.py."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.recorder import change_reason
from app.auth import reauthentication
from app.auth.principal import Principal
from app.dosing.schemas import DosingSessionStatus, TherapistAttestation
from app.errors import Conflict, InvalidInput, NotFound, ProtocolViolation
from app.models import Dose, DosingSession, Participant, Site, User, Visit, user_sites
from app.participants import service as participants
from app.permissions import Permission, Role, allows
from app.protocols import service as protocols
from app.protocols.schema import DosingSessionDefinition
from app.time_bounds import Bound, ImplausibleTime, check_within, local_date, not_in_future
from app.vocabulary import RecordStatus
from app.wording import with_article

S = DosingSessionStatus
DOSABLE_PARTICIPANT_STATUSES = ("randomised", "in_treatment")
BASELINE_ATTESTERS = (Role.CLINICIAN.value, Role.THERAPIST.value)


# --- loading ------------------------------------------------------------------------------------


def get(session: Session, dosing_session_id: uuid.UUID) -> DosingSession:
    dosing_session = session.get(DosingSession, dosing_session_id)
    if dosing_session is None:
        raise NotFound(f"dosing session {dosing_session_id} does not exist")
    return dosing_session


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


def therapists_required(session: Session, dosing_session: DosingSession) -> int:
    """How many therapists the session's protocol wants present before the initial dose."""
    return protocols.definition_of(
        session, dosing_session.protocol_version_id
    ).dosing.therapists_required


def lock(session: Session, dosing_session: DosingSession) -> None:
    """Reload the row FOR UPDATE, so concurrent requests on one session take turns."""
    session.flush()
    session.refresh(dosing_session, with_for_update=True)


def valid_doses(doses: Sequence[Dose]) -> list[Dose]:
    return [dose for dose in doses if dose.record_status == RecordStatus.VALID.value]


def check_time(field: str, value: datetime, earliest: Bound[datetime] | None) -> None:
    """Refuse a time before ``earliest`` or later than now (plus clock skew), naming the field."""
    try:
        check_within(value, earliest=earliest, latest=not_in_future())
    except ImplausibleTime as exc:
        raise field_error(field, str(exc)) from None


def _after_doses(dosing_session: DosingSession, doses: Sequence[Dose]) -> Bound[datetime]:
    """The start of the session, or its last valid dose once one is given."""
    assert dosing_session.started_at is not None
    last = max((d.administered_at for d in doses), default=None)
    if last is None:
        return Bound(dosing_session.started_at, "the session started")
    return Bound(last, "the last dose")


def field_error(field: str, message: str) -> InvalidInput:
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
        raise field_error(
            "visit_id", f"visit {visit.id} is not a visit of participant {participant.subject_id}"
        )
    if visit.kind != "experimental":
        raise field_error(
            "visit_id",
            f"visit {visit.code} is {with_article(visit.kind)} visit; dosing sessions are held at "
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
    lock(session, dosing_session)
    if dosing_session.status != S.PLANNED.value:
        raise Conflict(
            f"dosing session is {dosing_session.status}; only a planned session can start"
        )
    participant = participants.get(session, dosing_session.participant_id)
    _require_dosable(participant)
    check_time("started_at", started_at, participants.consent_time(session, participant))
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
    visit = participants.get_visit(session, dosing_session.visit_id)
    site = session.get_one(Site, participant.site_id)
    reason = "session started"
    if local_date(started_at, site.timezone) < visit.window_start_on:
        reason = (
            f"session started before the window of visit {visit.code} opens on "
            f"{visit.window_start_on.isoformat()}"
        )
    with change_reason(session, reason, "start"):
        dosing_session.status = S.IN_PROGRESS.value
        dosing_session.started_at = started_at
    participants.start_treatment(session, participant)
    return dosing_session


def end(
    session: Session, dosing_session: DosingSession, ended_at: datetime, end_reason: str | None
) -> DosingSession:
    """End a session in progress: after the return-to-baseline attestation, or with an
    ``end_reason`` saying why it ends without one. Its visit is then completed on the session's
    date (site-local), unless the visit already has an outcome."""
    lock(session, dosing_session)
    if dosing_session.status != S.IN_PROGRESS.value:
        raise Conflict(
            f"dosing session is {dosing_session.status}; only a session in progress can end"
        )
    attested = dosing_session.baseline_attested_at is not None
    if not attested and not end_reason:
        raise Conflict(
            "return to baseline has not been attested: attest it first (POST "
            "/dosing-sessions/{id}/baseline-attestation), or send end_reason saying why the "
            "session ends without it",
            errors=[
                {"field": "end_reason", "message": "required without the baseline attestation"}
            ],
        )
    if attested and end_reason:
        raise field_error(
            "end_reason",
            "return to baseline was attested, so the session ends without a reason; leave it out",
        )
    doses = valid_doses(doses_of(session, dosing_session))
    check_time("ended_at", ended_at, _after_doses(dosing_session, doses))
    reason = (
        f"ended without the return-to-baseline attestation: {end_reason}"
        if end_reason
        else "ended after the return to baseline"
    )
    with change_reason(session, reason, "end"):
        dosing_session.status = S.ENDED.value
        dosing_session.ended_at = ended_at
        dosing_session.end_reason = end_reason
    visit = participants.get_visit(session, dosing_session.visit_id)
    participant = participants.get(session, dosing_session.participant_id)
    site = session.get_one(Site, participant.site_id)
    assert dosing_session.started_at is not None
    participants.complete_by_session(
        session,
        visit,
        local_date(dosing_session.started_at, site.timezone),
        f"dosing session {dosing_session.id} ended",
    )
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
        wanted = " or ".join(with_article(role) for role in roles)
        return f"user {user.username} is {with_article(user.role)}, not {wanted}"
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
    reason: str,
) -> DosingSession:
    """A clinician attests, with a timestamp and a reason, that the co-therapist pair is
    present with the participant (each therapist may instead attest their own presence:
    :func:`attest_presence`).

    Allowed while the session is planned or in progress, never backfilled after it ended; a new
    attestation replaces the pair, the audit trail keeps the earlier one.
    """
    lock(session, dosing_session)
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
    check_time("present_at", present_at, participants.consent_time(session, participant))
    how = f"co-therapist pair present, attested for them by a clinician: {reason}"
    with change_reason(session, how, "attest_therapists"):
        dosing_session.lead_therapist_id = lead_therapist_id
        dosing_session.co_therapist_id = co_therapist_id
        dosing_session.lead_present_at = dosing_session.co_present_at = present_at
        dosing_session.therapists_present_at = present_at
    return dosing_session


def attest_presence(
    session: Session,
    principal: Principal,
    dosing_session: DosingSession,
    data: TherapistAttestation,
) -> DosingSession:
    """One therapist of the pair present at ``present_at``: the therapist attests it, signing in
    again (a refused re-authentication raises ReauthenticationFailed, to be answered so its audit
    record commits), or a clinician attests it for them with a reason. Once both are attested,
    the pair is present from the later of the two times (the initial dose waits for that)."""
    lock(session, dosing_session)
    if dosing_session.status == S.ENDED.value:
        raise Conflict(
            "therapist presence is attested while the session is planned or in progress; this "
            "session has ended"
        )
    participant = participants.get(session, dosing_session.participant_id)
    if data.therapist_id is None:
        if principal.role is not Role.THERAPIST:
            raise field_error(
                "username",
                f"{with_article(principal.role.value)} does not attest their own presence as a "
                "therapist; a clinician attests for a therapist with therapist_id and reason",
            )
        assert data.username is not None and data.password is not None
        reauthentication.reauthenticate(
            session,
            principal,
            data.username,
            data.password.get_secret_value(),
            act="attest presence",
            actor="attesting therapist",
            refused=reauthentication.Refused(
                "attestation_refused",
                "dosing_sessions",
                str(dosing_session.id),
                {"position": data.position},
            ),
        )
        therapist_id = principal.user_id
    else:
        if not allows(principal.role, Permission.PRESENCE_ATTEST_FOR):
            raise field_error(
                "therapist_id",
                "only a clinician attests for a therapist; a therapist attests their own "
                "presence with username and password",
            )
        therapist_id = data.therapist_id
    problem = _user_problem(session, therapist_id, (Role.THERAPIST.value,), participant.site_id)
    field = "username" if data.therapist_id is None else "therapist_id"
    _refuse([(field, problem)] if problem else [])
    other = (
        dosing_session.co_therapist_id
        if data.position == "lead"
        else dosing_session.lead_therapist_id
    )
    if other == therapist_id:
        _refuse([(field, "the lead and the co-therapist must be two different people")])
    check_time("present_at", data.present_at, participants.consent_time(session, participant))
    therapist = session.get_one(User, therapist_id)
    how = (
        f"{therapist.username} attested their own presence (re-authenticated)"
        if data.therapist_id is None
        else f"clinician attested {therapist.username} present: {data.reason}"
    )
    with change_reason(session, f"{data.position} therapist present; {how}", "attest_presence"):
        if data.position == "lead":
            dosing_session.lead_therapist_id = therapist_id
            dosing_session.lead_present_at = data.present_at
        else:
            dosing_session.co_therapist_id = therapist_id
            dosing_session.co_present_at = data.present_at
        if dosing_session.lead_present_at and dosing_session.co_present_at:
            dosing_session.therapists_present_at = max(
                dosing_session.lead_present_at, dosing_session.co_present_at
            )
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
    lock(session, dosing_session)
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
    doses = valid_doses(doses_of(session, dosing_session))
    check_time("attested_at", attested_at, _after_doses(dosing_session, doses))
    with change_reason(session, note or "vitals back near baseline", "attest_baseline"):
        dosing_session.baseline_attested_by_id = attested_by_id
        dosing_session.baseline_attested_at = attested_at
        dosing_session.baseline_attestation_note = note
    return dosing_session
