import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import FiniteFloat
from sqlalchemy import select

from app import clock
from app.auth.deps import Authorize, CurrentPrincipal, ScopedDose, ScopedParticipant
from app.auth.reauthentication import ReauthenticationFailed
from app.auth.scope import only_visible_participants, referenced_visit
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.dosing import dose_gate, doses, service, views
from app.dosing.deps import DosingSessionDep
from app.dosing.refusals import documented, reason_entry
from app.dosing.schemas import (
    BaselineAttestation,
    DeviceDosingSessionRead,
    DoseCreate,
    DoseGateRead,
    DoseRead,
    DosingSessionCreate,
    DosingSessionRead,
    DosingSessionStatus,
    EnteredInError,
    SessionEnd,
    SessionStart,
    TherapistAttestation,
    TherapistPresence,
)
from app.errors import problem
from app.models import Dose as DoseRow
from app.models import DosingSession as DosingSessionRow
from app.models import Participant as ParticipantRow
from app.models import Visit as VisitRow
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission, Role
from app.schemas import AwareDatetime

router = APIRouter(tags=["dosing"], route_class=CheckedRoute)


@router.post(
    "/participants/{participant_id}/dosing-sessions",
    response_model=DosingSessionRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.SESSION_PLAN))],
)
def create_dosing_session(
    session: SessionDep,
    principal: CurrentPrincipal,
    participant: ScopedParticipant,
    data: DosingSessionCreate,
) -> DosingSessionRead:
    """Plan the dosing session of one of the participant's experimental visits."""
    visit = referenced_visit(session, principal, data.visit_id, field="visit_id")
    return views.present(session, service.create_session(session, participant, visit))


@router.get(
    "/participants/{participant_id}/dosing-sessions",
    response_model=Page[DosingSessionRead],
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def list_participant_dosing_sessions(
    session: SessionDep, participant: ScopedParticipant, page: PageDep
) -> dict[str, object]:
    """The participant's dosing sessions in the order of their visits."""
    stmt = (
        select(DosingSessionRow)
        .join(VisitRow, VisitRow.id == DosingSessionRow.visit_id)
        .where(DosingSessionRow.participant_id == participant.id)
    )
    items, cursor = paginate(session, stmt, DosingSessionRow.id, page, order_by=[VisitRow.sequence])
    return {"items": views.present_many(session, items), "next_cursor": cursor}


@router.get(
    "/dosing-sessions",
    response_model=Page[DosingSessionRead],
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def list_dosing_sessions(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: DosingSessionStatus | None = None,
    participant_id: uuid.UUID | None = None,
) -> dict[str, object]:
    """Dosing sessions of the caller's sites (of every site for the study-wide roles)."""
    stmt = only_visible_participants(
        select(DosingSessionRow), principal, DosingSessionRow.participant_id
    )
    if status:
        stmt = stmt.where(DosingSessionRow.status == status.value)
    if participant_id:
        stmt = stmt.where(DosingSessionRow.participant_id == participant_id)
    items, cursor = paginate(session, stmt, DosingSessionRow.id, page)
    return {"items": views.present_many(session, items), "next_cursor": cursor}


@router.get(
    "/devices/me/dosing-sessions",
    response_model=Page[DeviceDosingSessionRead],
    dependencies=[Depends(Authorize(Permission.SESSION_DISCOVER))],
)
def list_device_dosing_sessions(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep
) -> dict[str, object]:
    """For a bedside device: the dosing sessions in progress at its site, oldest start first,
    to choose the one to post vitals for. Visit, start and subject id only; never an arm."""
    stmt = (
        select(DosingSessionRow)
        .join(ParticipantRow, ParticipantRow.id == DosingSessionRow.participant_id)
        .where(
            DosingSessionRow.status == DosingSessionStatus.IN_PROGRESS.value,
            ParticipantRow.site_id.in_(principal.site_ids),
        )
    )
    rows, cursor = paginate(
        session, stmt, DosingSessionRow.id, page, order_by=[DosingSessionRow.started_at]
    )
    labels = {
        row.id: (row.code, row.name, row.subject_id)
        for row in session.execute(
            select(DosingSessionRow.id, VisitRow.code, VisitRow.name, ParticipantRow.subject_id)
            .join(VisitRow, VisitRow.id == DosingSessionRow.visit_id)
            .join(ParticipantRow, ParticipantRow.id == DosingSessionRow.participant_id)
            .where(DosingSessionRow.id.in_([row.id for row in rows]))
        )
    }
    items = [
        DeviceDosingSessionRead(
            id=row.id,
            visit_code=labels[row.id][0],
            visit_name=labels[row.id][1],
            started_at=row.started_at,
            subject_id=labels[row.id][2],
        )
        for row in rows
    ]
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/dosing-sessions/{dosing_session_id}",
    response_model=DosingSessionRead,
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def get_dosing_session(session: SessionDep, dosing_session: DosingSessionDep) -> DosingSessionRead:
    return views.present(session, dosing_session)


@router.post(
    "/dosing-sessions/{dosing_session_id}/start",
    response_model=DosingSessionRead,
    dependencies=[Depends(Authorize(Permission.SESSION_RUN))],
)
def start_dosing_session(
    session: SessionDep, dosing_session: DosingSessionDep, data: SessionStart
) -> DosingSessionRead:
    """Start a planned session; the participant's first one moves them to in_treatment."""
    return views.present(session, service.start(session, dosing_session, data.started_at))


@router.post(
    "/dosing-sessions/{dosing_session_id}/therapist-presence",
    response_model=DosingSessionRead,
    dependencies=[Depends(Authorize(Permission.PRESENCE_ATTEST_FOR))],
)
def attest_therapist_presence(
    session: SessionDep, dosing_session: DosingSessionDep, data: TherapistPresence
) -> DosingSessionRead:
    """A clinician attests, with a reason, that two distinct, active therapists of the site are
    present together (each therapist may attest their own: POST .../therapist-attestations)."""
    service.attest_therapists(
        session,
        dosing_session,
        data.lead_therapist_id,
        data.co_therapist_id,
        data.present_at,
        data.reason,
    )
    return views.present(session, dosing_session)


@router.post(
    "/dosing-sessions/{dosing_session_id}/therapist-attestations",
    response_model=DosingSessionRead,
    dependencies=[Depends(Authorize(Permission.SESSION_RUN))],
    responses={
        401: {"description": "wrong password (the attempt is audited)"},
        403: {
            "description": "not the caller's username, or not a therapist (own presence) or "
            "a clinician (for a therapist)"
        },
        429: {"description": "account locked after failed password checks"},
    },
)
def attest_therapist(
    session: SessionDep,
    request: Request,
    principal: CurrentPrincipal,
    dosing_session: DosingSessionDep,
    data: TherapistAttestation,
) -> DosingSessionRead | JSONResponse:
    """One therapist of the pair present: attested by the therapist, signing in again with
    `username` and `password`, or by a clinician for them with `therapist_id` and `reason`.
    The initial dose waits until both the lead and the co-therapist are attested."""
    try:
        service.attest_presence(session, principal, dosing_session, data)
    except ReauthenticationFailed as refused:
        # Answered, not raised: the transaction commits with the audit record of the attempt.
        return problem(
            refused.status_code, refused.title, refused.detail, refused.slug, request.url.path
        )
    return views.present(session, dosing_session)


@router.post(
    "/dosing-sessions/{dosing_session_id}/end",
    response_model=DosingSessionRead,
    dependencies=[Depends(Authorize(Permission.SESSION_RUN))],
)
def end_dosing_session(
    session: SessionDep, dosing_session: DosingSessionDep, data: SessionEnd
) -> DosingSessionRead:
    """End a session in progress: after the return-to-baseline attestation, or with
    `end_reason`. Its visit is completed on the session's date."""
    return views.present(
        session, service.end(session, dosing_session, data.ended_at, data.end_reason)
    )


@router.post(
    "/dosing-sessions/{dosing_session_id}/baseline-attestation",
    response_model=DosingSessionRead,
    dependencies=[Depends(Authorize(Permission.SESSION_RUN))],
)
def attest_baseline(
    session: SessionDep, dosing_session: DosingSessionDep, data: BaselineAttestation
) -> DosingSessionRead:
    """Attest that vitals are back near baseline (once, after the start and the last dose)."""
    service.attest_baseline(
        session, dosing_session, data.attested_by_id, data.attested_at, data.note
    )
    return views.present(session, dosing_session)


@router.post(
    "/dosing-sessions/{dosing_session_id}/doses",
    response_model=DoseRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.DOSE_RECORD))],
    responses=documented([409, 422]),
)
def record_dose(
    session: SessionDep,
    principal: CurrentPrincipal,
    dosing_session: DosingSessionDep,
    data: DoseCreate,
) -> DoseRow:
    """Record a dose the protocol allows; one that deviates needs `deviation_reason`. A
    supplemental dose while the dose gate is closed is refused (409) unless a clinician sends
    `gate_override_reason`. A refused supplemental dose names each reason with its own problem
    type, as `GET .../supplemental-dose-gate` lists them."""
    return doses.record_dose(
        session,
        dosing_session,
        data,
        overridden_by_clinician=principal.role == Role.CLINICIAN,
    )


@router.get(
    "/dosing-sessions/{dosing_session_id}/supplemental-dose-gate",
    response_model=DoseGateRead,
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def supplemental_dose_gate(
    session: SessionDep,
    dosing_session: DosingSessionDep,
    as_of: Annotated[
        AwareDatetime | None,
        Query(
            description="when the dose would be given (default now): judged on what Vigil knew "
            "then; not before the session started, nor in the future"
        ),
    ] = None,
    amount_mg: Annotated[
        FiniteFloat | None,
        Query(gt=0, le=10000, description="the amount proposed (default the protocol's)"),
    ] = None,
) -> DoseGateRead:
    """Would a supplemental dose of `amount_mg` given at `as_of` be recorded without a
    `deviation_reason` or a `gate_override_reason`? Every reason it would not, each with the
    problem type a refusal of that dose answers with, and the window."""
    at = as_of if as_of is not None else clock.utcnow()
    decision = dose_gate.judge_supplemental(session, dosing_session, at, amount_mg, field="as_of")
    return DoseGateRead(
        open=decision.open,
        reasons=[reason_entry(reason) for reason in decision.why],
        opens_at=decision.opens_at,
        closes_at=decision.closes_at,
        supplemental_mg=decision.supplemental_mg,
        amount_mg=decision.amount_mg,
        evaluated_at=decision.evaluated_at,
    )


@router.get(
    "/dosing-sessions/{dosing_session_id}/doses",
    response_model=Page[DoseRead],
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def list_doses(
    session: SessionDep, dosing_session: DosingSessionDep, page: PageDep
) -> dict[str, object]:
    """Every dose of the session, entered-in-error ones included, in the order given."""
    stmt = select(DoseRow).where(DoseRow.dosing_session_id == dosing_session.id)
    items, cursor = paginate(session, stmt, DoseRow.id, page, order_by=[DoseRow.administered_at])
    return {"items": items, "next_cursor": cursor}


@router.post(
    "/doses/{dose_id}/entered-in-error",
    response_model=DoseRead,
    dependencies=[Depends(Authorize(Permission.DOSE_RECORD))],
)
def enter_dose_in_error(session: SessionDep, dose: ScopedDose, data: EnteredInError) -> DoseRow:
    """Mark a dose entered in error; it is kept, and no longer counts toward totals or windows."""
    return doses.enter_dose_in_error(session, dose, data.reason)
