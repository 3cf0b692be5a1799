"""Therapist notes in the web client: the form that writes one (its author is the caller, its
time in the site's clock), and its page with the e-signatures and the sign form. The API's
services and scope rules throughout."""

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app import clock
from app.auth.deps import Authorize, ScopedNote, ScopedParticipant
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import DosingSession, Participant, Site, TherapistNote, User, Visit
from app.notes import service
from app.notes.schemas import NoteCreate
from app.participants import service as participants
from app.permissions import Permission
from app.web import forms, signing
from app.web.templating import render
from app.web.viewer import CurrentViewer, Viewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

TEXTS = ("text", "written_at", "dosing_session_id", "visit_id")


def _site(session: Session, participant: Participant) -> Site:
    return session.get_one(Site, participant.site_id)


def _form_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    participant: Participant,
    values: dict[str, str],
    errors: forms.FieldErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    dosing_sessions = session.execute(
        select(DosingSession.id, Visit.code, Visit.name)
        .join(Visit, Visit.id == DosingSession.visit_id)
        .where(DosingSession.participant_id == participant.id)
        .order_by(Visit.sequence)
    )
    visits = participants.visits_of(session, participant)
    return render(
        request,
        "note_form.html",
        status_code,
        viewer=viewer,
        nav="",
        participant=participant,
        site=_site(session, participant),
        dosing_sessions=[(str(i), f"{code} · {name}") for i, code, name in dosing_sessions],
        visits=[(str(v.id), f"{v.code} · {v.name}") for v in visits],
        values=values,
        errors=errors or {},
    )


@router.get(
    "/participants/{participant_id}/notes/new",
    dependencies=[Depends(Authorize(Permission.NOTE_WRITE))],
)
def new_note(
    session: SessionDep, request: Request, viewer: CurrentViewer, participant: ScopedParticipant
) -> HTMLResponse:
    now = forms.for_input(clock.utcnow(), _site(session, participant).timezone)
    return _form_page(request, session, viewer, participant, {"written_at": now})


def _create_data(form: FormData, zone: str, author_id: uuid.UUID) -> NoteCreate:
    typed = forms.texts(form, TEXTS)
    errors: forms.FieldErrors = {}
    data: dict[str, Any] = {"author_id": author_id, "text": typed["text"]}
    try:
        data["written_at"] = forms.in_site_time(typed["written_at"], zone, "written_at")
    except forms.FormRefused as refused:
        errors |= refused.errors
    for name in ("dosing_session_id", "visit_id"):
        if typed[name].strip():
            data[name] = typed[name].strip()
    if data.get("written_at") is None:
        data.pop("written_at", None)
    return forms.validated(NoteCreate, data, errors)


@router.post(
    "/participants/{participant_id}/notes/new",
    dependencies=[Depends(Authorize(Permission.NOTE_WRITE))],
)
def write_note(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    participant: ScopedParticipant,
    form: forms.PostedForm,
) -> Response:
    zone = _site(session, participant).timezone
    note, errors = forms.submit(
        session,
        lambda: _create_data(form, zone, viewer.principal.user_id),
        lambda data: service.create(session, participant, data),
    )
    if note is not None:
        return RedirectResponse(f"/notes/{note.id}", status_code=303)
    values = {name: str(form.get(name) or "") for name in TEXTS}
    return _form_page(request, session, viewer, participant, values, errors, 422)


def _sign_action(note: TherapistNote) -> str:
    return f"/notes/{note.id}/signatures"


def _note_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    note: TherapistNote,
    refusal: signing.Refusal | None = None,
    meaning: str | None = None,
) -> HTMLResponse:
    shown = service.present(session, note)
    participant = session.get_one(Participant, note.participant_id)
    site = _site(session, participant)
    author = session.get(User, note.author_id) if note.author_id else None
    return render(
        request,
        "note.html",
        refusal.status_code if refusal else 200,
        viewer=viewer,
        nav="",
        note=shown,
        author=author,
        participant=participant,
        site=site,
        zone=site.timezone,
        signatures=shown.signatures,
        sign=signing.sign_form(
            viewer.principal, TherapistNote, _sign_action(note), shown.signatures, refusal, meaning
        ),
        refused=refusal.message if refusal else None,
        signed=request.query_params.get("signed") == "1",
        what="note",
    )


@router.get("/notes/{note_id}", dependencies=[Depends(Authorize(Permission.NOTE_READ))])
def note_page(
    session: SessionDep, request: Request, viewer: CurrentViewer, note: ScopedNote
) -> HTMLResponse:
    return _note_page(request, session, viewer, note)


@router.post("/notes/{note_id}/signatures", dependencies=[Depends(Authorize(Permission.SIGN))])
def sign_note(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    note: ScopedNote,
    form: forms.PostedForm,
) -> Response:
    note_id: uuid.UUID = note.id
    refusal = signing.sign(session, viewer.principal, TherapistNote, note_id, form)
    if refusal is None:
        return RedirectResponse(f"/notes/{note_id}?signed=1#signatures", 303)
    meaning = str(form.get("meaning") or "")
    return _note_page(request, session, viewer, note, refusal, meaning)
