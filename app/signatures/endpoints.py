import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.auth.deps import (
    Authorize,
    CurrentPrincipal,
    ScopedAdverseEvent,
    ScopedDosingSession,
    ScopedNote,
)
from app.auth.principal import Principal
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.errors import problem
from app.models import AdverseEvent, DosingSession, TherapistNote
from app.permissions import Permission
from app.signatures import service
from app.signatures.schemas import SignatureCreate, SignatureRead

router = APIRouter(tags=["signatures"], route_class=CheckedRoute)

Signer = CurrentPrincipal  # the route's policy (SIGN) is declared on the decorator

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "wrong password (the attempt is audited)"},
    403: {"description": "not the caller's username, or not theirs to sign"},
    404: {"description": "no such record in the caller's sites"},
    409: {"description": "entered in error, not ended, or already signed so"},
    429: {"description": "account locked after failed password checks"},
}


def _sign(
    session: Session,
    request: Request,
    signer: Principal,
    model: type[service.SignableT],
    record_id: uuid.UUID,
    data: SignatureCreate,
) -> SignatureRead | JSONResponse:
    try:
        signature, record = service.sign(session, signer, model, record_id, data)
    except service.ReauthenticationFailed as refused:
        # Answered, not raised: the transaction commits with the audit record of the attempt.
        return problem(
            refused.status_code, refused.title, refused.detail, refused.slug, request.url.path
        )
    return service.present(signature, record)


@router.post(
    "/adverse-events/{event_id}/signatures",
    response_model=SignatureRead,
    status_code=status.HTTP_201_CREATED,
    responses=RESPONSES,
    dependencies=[Depends(Authorize(Permission.SIGN))],
)
def sign_adverse_event(
    session: SessionDep,
    request: Request,
    signer: Signer,
    event: ScopedAdverseEvent,
    data: SignatureCreate,
) -> SignatureRead | JSONResponse:
    """A clinician signs the assessment of an adverse event (review or approval), giving their
    username and password again."""
    return _sign(session, request, signer, AdverseEvent, event.id, data)


@router.post(
    "/dosing-sessions/{dosing_session_id}/signatures",
    response_model=SignatureRead,
    status_code=status.HTTP_201_CREATED,
    responses=RESPONSES,
    dependencies=[Depends(Authorize(Permission.SIGN))],
)
def sign_dosing_session(
    session: SessionDep,
    request: Request,
    signer: Signer,
    dosing_session: ScopedDosingSession,
    data: SignatureCreate,
) -> SignatureRead | JSONResponse:
    """A clinician signs the close-out of an ended dosing session (approval)."""
    return _sign(session, request, signer, DosingSession, dosing_session.id, data)


@router.post(
    "/notes/{note_id}/signatures",
    response_model=SignatureRead,
    status_code=status.HTTP_201_CREATED,
    responses=RESPONSES,
    dependencies=[Depends(Authorize(Permission.SIGN))],
)
def sign_note(
    session: SessionDep, request: Request, signer: Signer, note: ScopedNote, data: SignatureCreate
) -> SignatureRead | JSONResponse:
    """The author signs their note (authorship); a clinician may sign it as review."""
    return _sign(session, request, signer, TherapistNote, note.id, data)
