"""Adverse events in the web client: the form that records one (the fields of the API's create
schema, times in the site's clock), and its page: what was recorded, the SAE reporting clock
and the e-signatures with the sign form. The API's services and scope rules throughout."""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app import clock
from app.adverse_events import service
from app.adverse_events.schemas import (
    DEFAULT_CTCAE_VERSION,
    ActionTaken,
    AdverseEventCreate,
    AdverseEventRead,
    Expectedness,
    Outcome,
    Relatedness,
    SeriousnessCriterion,
    Severity,
)
from app.auth.deps import Authorize, ScopedAdverseEvent, ScopedParticipant
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import AdverseEvent, DosingSession, Participant, Site, Visit
from app.permissions import Permission
from app.web import forms, signing
from app.web.templating import local_time, render, time_left
from app.web.viewer import CurrentViewer, Viewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

CRITERIA = {
    SeriousnessCriterion.DEATH: "Results in death",
    SeriousnessCriterion.LIFE_THREATENING: "Is life-threatening",
    SeriousnessCriterion.HOSPITALISATION: "Requires inpatient hospitalisation or prolongs it",
    SeriousnessCriterion.DISABILITY: "Results in persistent or significant disability",
    SeriousnessCriterion.CONGENITAL_ANOMALY: "Is a congenital anomaly or birth defect",
    SeriousnessCriterion.IMPORTANT_MEDICAL_EVENT: "Is an important medical event",
}
CHOICES = {
    "severity": [s.value for s in Severity],
    "relatedness": [r.value for r in Relatedness],
    "expectedness": [e.value for e in Expectedness],
    "action_taken": [a.value for a in ActionTaken],
    "outcome": [o.value for o in Outcome],
}
TIMES = ("onset_at", "end_at", "site_aware_at", "sponsor_reported_at")
TEXTS = (
    "verbatim_term",
    *TIMES,
    "dosing_session_id",
    "ctcae_grade",
    "ctcae_version",
    *CHOICES,
)


def _site(session: Session, participant: Participant) -> Site:
    return session.get_one(Site, participant.site_id)


def _dosing_sessions(session: Session, participant: Participant) -> list[tuple[str, str]]:
    """(id, label) of the participant's dosing sessions, for the form's choice."""
    rows = session.execute(
        select(DosingSession.id, Visit.code, Visit.name)
        .join(Visit, Visit.id == DosingSession.visit_id)
        .where(DosingSession.participant_id == participant.id)
        .order_by(Visit.sequence)
    )
    return [(str(ds_id), f"{code} · {name}") for ds_id, code, name in rows]


def _form_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    participant: Participant,
    values: dict[str, Any],
    errors: forms.FieldErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "adverse_event_form.html",
        status_code,
        viewer=viewer,
        nav="",
        participant=participant,
        site=_site(session, participant),
        dosing_sessions=_dosing_sessions(session, participant),
        values=values,
        errors=errors or {},
        choices=CHOICES,
        criteria=[(c.value, label) for c, label in CRITERIA.items()],
    )


@router.get(
    "/participants/{participant_id}/adverse-events/new",
    dependencies=[Depends(Authorize(Permission.AE_WRITE))],
)
def new_adverse_event(
    session: SessionDep, request: Request, viewer: CurrentViewer, participant: ScopedParticipant
) -> HTMLResponse:
    values: dict[str, Any] = {"ctcae_version": DEFAULT_CTCAE_VERSION, "seriousness_criteria": []}
    return _form_page(request, session, viewer, participant, values)


def _create_data(form: FormData, zone: str) -> AdverseEventCreate:
    """The create schema from the form, or FormRefused naming every field at fault."""
    typed = forms.texts(form, TEXTS)
    errors: forms.FieldErrors = {}
    data: dict[str, Any] = {}
    for name in TEXTS:
        value = typed[name].strip()
        if not value:
            continue
        if name in TIMES:
            try:
                data[name] = forms.in_site_time(value, zone, name)
            except forms.FormRefused as refused:
                errors |= refused.errors
        elif name == "ctcae_grade":
            data[name] = int(value) if value.isdigit() else value
        else:
            data[name] = value
    data["seriousness_criteria"] = [str(c) for c in form.getlist("seriousness_criteria")]
    return forms.validated(AdverseEventCreate, data, errors)


@router.post(
    "/participants/{participant_id}/adverse-events/new",
    dependencies=[Depends(Authorize(Permission.AE_WRITE))],
)
def record_adverse_event(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    participant: ScopedParticipant,
    form: forms.PostedForm,
) -> Response:
    zone = _site(session, participant).timezone
    event, errors = forms.submit(
        session,
        lambda: _create_data(form, zone),
        lambda data: service.create(session, participant, data),
    )
    if event is not None:
        return RedirectResponse(f"/adverse-events/{event.id}", status_code=303)
    values: dict[str, Any] = {name: str(form.get(name) or "") for name in TEXTS}
    values["seriousness_criteria"] = form.getlist("seriousness_criteria")
    return _form_page(request, session, viewer, participant, values, errors, 422)


def reporting_clock(event: AdverseEventRead, zone: str, now: datetime) -> dict[str, Any] | None:
    """The SAE's investigator-to-sponsor clock as the page shows it; None for a non-serious
    event (or one entered in error)."""
    due = event.sponsor_report_due_at
    if due is None:
        return None
    if event.sponsor_reported_at is not None:
        late = event.sponsor_reported_at > due
        return {
            "state": "late" if late else "reported",
            "due": local_time(due, zone),
            "text": f"Reported to the sponsor {local_time(event.sponsor_reported_at, zone)}"
            + (f", {time_left(due - event.sponsor_reported_at)}" if late else ""),
        }
    if event.sponsor_report_overdue:
        return {
            "state": "overdue",
            "due": local_time(due, zone),
            "text": f"{time_left(due - now).capitalize()}: not yet reported to the sponsor",
        }
    return {
        "state": "running",
        "due": local_time(due, zone),
        "text": f"{time_left(due - now)} to report to the sponsor",
    }


def _event_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    event: AdverseEvent,
    refusal: signing.Refusal | None = None,
    meaning: str | None = None,
) -> HTMLResponse:
    shown = service.present(session, event)
    participant = session.get_one(Participant, event.participant_id)
    site = _site(session, participant)
    return render(
        request,
        "adverse_event.html",
        refusal.status_code if refusal else 200,
        viewer=viewer,
        nav="",
        event=shown,
        participant=participant,
        site=site,
        zone=site.timezone,
        reporting=reporting_clock(shown, site.timezone, clock.utcnow()),
        criteria=CRITERIA,
        signatures=shown.signatures,
        sign=signing.sign_form(
            viewer.principal, AdverseEvent, _sign_action(event), shown.signatures, refusal, meaning
        ),
        refused=refusal.message if refusal else None,
        signed=request.query_params.get("signed") == "1",
        what="adverse event",
    )


def _sign_action(event: AdverseEvent) -> str:
    return f"/adverse-events/{event.id}/signatures"


@router.get(
    "/adverse-events/{event_id}", dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))]
)
def adverse_event_page(
    session: SessionDep, request: Request, viewer: CurrentViewer, event: ScopedAdverseEvent
) -> HTMLResponse:
    return _event_page(request, session, viewer, event)


@router.post(
    "/adverse-events/{event_id}/signatures", dependencies=[Depends(Authorize(Permission.SIGN))]
)
def sign_adverse_event(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    event: ScopedAdverseEvent,
    form: forms.PostedForm,
) -> Response:
    event_id: uuid.UUID = event.id
    refusal = signing.sign(session, viewer.principal, AdverseEvent, event_id, form)
    if refusal is None:
        return RedirectResponse(f"/adverse-events/{event_id}?signed=1#signatures", 303)
    meaning = str(form.get("meaning") or "")
    return _event_page(request, session, viewer, event, refusal, meaning)
