"""GET /sessions/{id}: the live page of a dosing session, and what it posts.

The session is loaded as the API loads it (another site's is a 404 page); each route declares
the permission of the API route it stands beside, and calls the same service: acknowledging and
resolving an alert (POST /api/v1/alerts/{id}/acknowledge|resolve), recording a dose (POST
/api/v1/dosing-sessions/{id}/doses), attesting a therapist present (.../therapist-attestations)
and the return to baseline (.../baseline-attestation).

Live without reload (static/js/session.js): alerts come from the API's alert stream (GET
/api/v1/alerts/stream, resumed with Last-Event-ID); on each event of this session, and every few
seconds besides, the page reads the session's readings again from the API (GET /api/v1/
dosing-sessions/{id}/vital-readings) and its panels from the fragments below, so a reading that
raised no alert still reaches the chart, and nothing depends on an event having been seen.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import SecretStr, ValidationError
from sqlalchemy.orm import Session

from app import clock
from app.alerts import service as alerts
from app.auth.deps import Authorize, ScopedAlert
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.dosing import doses, service, views
from app.dosing.deps import DosingSessionDep
from app.dosing.schemas import DoseCreate, TherapistAttestation
from app.errors import NotFound, VigilError
from app.models import Alert, DosingSession
from app.permissions import Permission, Role
from app.web.session import view
from app.web.session.forms import FormState, attempt, invalid, local_input, local_moment, refused
from app.web.templating import render
from app.web.viewer import CurrentViewer, Viewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

Field = Annotated[str, Form()]
NOTICES = {
    "dose": "The dose was recorded.",
    "presence": "The therapist's presence was attested.",
    "baseline": "The return to baseline was attested.",
    "acknowledged": "The alert was acknowledged.",
    "resolved": "The alert was resolved.",
}


def _page(
    request: Request,
    session: Session,
    viewer: Viewer,
    dosing_session: DosingSession,
    form: FormState | None = None,
) -> HTMLResponse:
    now = clock.utcnow()
    context = view.page_context(session, viewer, dosing_session, now)
    zone = context["head"].zone
    return render(
        request,
        "session.html",
        form.status_code if form else 200,
        viewer=viewer,
        nav="overview",
        form=form,
        notice=NOTICES.get(request.query_params.get("done", "")),
        now_input=local_input(now, zone),
        **context,
    )


def _done(dosing_session: DosingSession, what: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/sessions/{dosing_session.id}?done={what}#{anchor}", status_code=303)


@router.get(
    "/sessions/{dosing_session_id}", dependencies=[Depends(Authorize(Permission.SESSION_READ))]
)
def session_page(
    session: SessionDep, request: Request, viewer: CurrentViewer, dosing_session: DosingSessionDep
) -> HTMLResponse:
    return _page(request, session, viewer, dosing_session)


# --- the panels the page refreshes in place ------------------------------------------------------


def _alerts_panel(
    request: Request,
    session: Session,
    viewer: Viewer,
    dosing_session: DosingSession,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    head = view.head_of(session, dosing_session)
    return render(
        request,
        "session_alerts.html",
        status_code,
        viewer=viewer,
        head=head,
        alerts=view.open_alerts(session, viewer, dosing_session),
        alert_error=error,
    )


@router.get(
    "/sessions/{dosing_session_id}/alerts",
    dependencies=[Depends(Authorize(Permission.ALERT_READ))],
)
def alerts_panel(
    session: SessionDep, request: Request, viewer: CurrentViewer, dosing_session: DosingSessionDep
) -> HTMLResponse:
    return _alerts_panel(request, session, viewer, dosing_session)


@router.get(
    "/sessions/{dosing_session_id}/status",
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def status_panel(
    session: SessionDep, request: Request, viewer: CurrentViewer, dosing_session: DosingSessionDep
) -> HTMLResponse:
    """The schedule (next measurement due, overdue) and the supplemental dose gate."""
    now = clock.utcnow()
    head = view.head_of(session, dosing_session)
    read = views.present(session, dosing_session)
    return render(
        request,
        "session_status.html",
        viewer=viewer,
        head=head,
        ds=read,
        now=now,
        schedule=view.schedule_of(session, dosing_session, read, now),
        gate=view.supplemental_gate(session, dosing_session, now),
        measure_names=view.MEASURE_NAMES,
    )


# --- alerts: acknowledge, resolve ---------------------------------------------------------------


def _alert_of(dosing_session: DosingSession, alert: Alert) -> Alert:
    """The alert of the path, if it is one of this session's (else as missing as another site's)."""
    if alert.dosing_session_id != dosing_session.id:
        raise NotFound(f"alert {alert.id} does not exist")
    return alert


def _answer_alert(
    request: Request,
    session: Session,
    viewer: Viewer,
    dosing_session: DosingSession,
    error: VigilError | None,
    done: str,
    values: dict[str, str],
) -> Response:
    in_place = bool(request.headers.get("hx-request"))
    if in_place:
        message = error.detail if error else None
        return _alerts_panel(
            request, session, viewer, dosing_session, message, error.status_code if error else 200
        )
    if error is not None:
        return _page(request, session, viewer, dosing_session, refused("alert", values, error))
    return _done(dosing_session, done, "alerts")


@router.post(
    "/sessions/{dosing_session_id}/alerts/{alert_id}/acknowledge",
    dependencies=[Depends(Authorize(Permission.ALERT_RESPOND))],
)
def acknowledge_alert(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    dosing_session: DosingSessionDep,
    alert: ScopedAlert,
    note: Field = "",
) -> Response:
    found = _alert_of(dosing_session, alert)
    user_id = viewer.principal.user_id
    _, error = attempt(
        session, lambda: alerts.acknowledge(session, found, user_id, note.strip() or None)
    )
    return _answer_alert(
        request, session, viewer, dosing_session, error, "acknowledged", {"note": note}
    )


@router.post(
    "/sessions/{dosing_session_id}/alerts/{alert_id}/resolve",
    dependencies=[Depends(Authorize(Permission.ALERT_RESPOND))],
)
def resolve_alert(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    dosing_session: DosingSessionDep,
    alert: ScopedAlert,
    resolution: Field = "",
) -> Response:
    found = _alert_of(dosing_session, alert)
    user_id = viewer.principal.user_id
    _, error = attempt(session, lambda: alerts.resolve(session, found, user_id, resolution))
    values = {"resolution": resolution}
    return _answer_alert(request, session, viewer, dosing_session, error, "resolved", values)


# --- doses and attestations ---------------------------------------------------------------------


@router.post(
    "/sessions/{dosing_session_id}/doses", dependencies=[Depends(Authorize(Permission.DOSE_RECORD))]
)
def record_dose(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    dosing_session: DosingSessionDep,
    kind: Field = "",
    amount_mg: Field = "",
    administered_at: Field = "",
    deviation_reason: Field = "",
    gate_override_reason: Field = "",
) -> Response:
    values = {
        "kind": kind,
        "amount_mg": amount_mg,
        "administered_at": administered_at,
        "deviation_reason": deviation_reason,
        "gate_override_reason": gate_override_reason,
    }
    zone = view.head_of(session, dosing_session).zone
    try:
        data = DoseCreate.model_validate(
            {
                "kind": kind,
                "amount_mg": float(amount_mg) if amount_mg.strip() else None,
                "administered_at": local_moment(
                    "administered_at", administered_at, zone, clock.utcnow()
                ),
                "deviation_reason": deviation_reason.strip() or None,
                "gate_override_reason": gate_override_reason.strip() or None,
            }
        )
    except ValueError as error:  # a number that is none, or the schema's refusal
        if isinstance(error, ValidationError):
            form = invalid("dose", values, error)
        else:
            form = FormState("dose", values, {"amount_mg": "give the amount in mg, a number"})
        return _page(request, session, viewer, dosing_session, form)
    except VigilError as error:
        return _page(request, session, viewer, dosing_session, refused("dose", values, error))
    by_clinician = viewer.principal.role is Role.CLINICIAN
    _, failed = attempt(
        session,
        lambda: doses.record_dose(
            session, dosing_session, data, overridden_by_clinician=by_clinician
        ),
    )
    if failed is not None:
        return _page(request, session, viewer, dosing_session, refused("dose", values, failed))
    return _done(dosing_session, "dose", "dosing")


@router.post(
    "/sessions/{dosing_session_id}/therapist-attestations",
    dependencies=[Depends(Authorize(Permission.SESSION_RUN))],
)
def attest_therapist(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    dosing_session: DosingSessionDep,
    position: Field = "",
    present_at: Field = "",
    password: Field = "",
    therapist_id: Field = "",
    reason: Field = "",
) -> Response:
    """A therapist attests their own presence (signing in again with their password), or a
    clinician attests a therapist present, with a reason: app/dosing/service.attest_presence."""
    values = {"position": position, "present_at": present_at, "therapist_id": therapist_id}
    values["reason"] = reason
    principal = viewer.principal
    zone = view.head_of(session, dosing_session).zone
    own = principal.role is Role.THERAPIST
    try:
        data = TherapistAttestation.model_validate(
            {
                "position": position,
                "present_at": local_moment("present_at", present_at, zone, clock.utcnow()),
                "username": principal.username if own else None,
                "password": SecretStr(password) if own else None,
                "therapist_id": None
                if own
                else (uuid.UUID(therapist_id) if therapist_id else None),
                "reason": None if own else (reason.strip() or None),
            }
        )
    except ValidationError as error:
        return _page(request, session, viewer, dosing_session, invalid("presence", values, error))
    except ValueError:
        form = FormState("presence", values, {"therapist_id": "choose a therapist of the site"})
        return _page(request, session, viewer, dosing_session, form)
    except VigilError as error:
        return _page(request, session, viewer, dosing_session, refused("presence", values, error))
    _, failed = attempt(
        session, lambda: service.attest_presence(session, principal, dosing_session, data)
    )
    if failed is not None:
        return _page(request, session, viewer, dosing_session, refused("presence", values, failed))
    return _done(dosing_session, "presence", "attestations")


@router.post(
    "/sessions/{dosing_session_id}/baseline-attestation",
    dependencies=[Depends(Authorize(Permission.SESSION_RUN))],
)
def attest_baseline(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    dosing_session: DosingSessionDep,
    attested_at: Field = "",
    note: Field = "",
) -> Response:
    """The signed-in clinician or therapist attests that vitals are back near baseline."""
    values = {"attested_at": attested_at, "note": note}
    zone = view.head_of(session, dosing_session).zone
    user_id = viewer.principal.user_id

    def attest() -> DosingSession:
        at = local_moment("attested_at", attested_at, zone, clock.utcnow())
        return service.attest_baseline(session, dosing_session, user_id, at, note.strip() or None)

    _, failed = attempt(session, attest)
    if failed is not None:
        return _page(request, session, viewer, dosing_session, refused("baseline", values, failed))
    return _done(dosing_session, "baseline", "attestations")
