"""FHIR R4 input for bedside devices that speak FHIR: ``POST /api/v1/fhir/Observation`` (one
vital-signs Observation) and ``POST /api/v1/fhir`` (a ``batch`` or ``transaction`` Bundle of
them), answered as a FHIR server answers: 201 with Location (200 for a replay) and the
Observation as stored, a batch-response or transaction-response Bundle, and for every error an
OperationOutcome (application/fhir+json): these routes are the one place that does not answer
problem+json. The same permission, scope, checks, audit records and alerts as Vigil's own
reading endpoints (app/fhir_input/mapping.py says how an Observation maps to a reading)."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.deps import Authorize, CurrentPrincipal
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.errors import VigilError, field_path
from app.fhir_input import service
from app.fhir_input.outcome import (
    FHIR_JSON,
    ISSUE_OF_STATUS,
    FhirJSONResponse,
    FhirRefusal,
    Issue,
    outcome_response,
    refusal_of,
)
from app.permissions import Permission


class FhirRoute(CheckedRoute):
    """Every error of the route, the caller's included (401, 403), as a FhirRefusal, which the
    handler ``install``ed answers as an OperationOutcome. Re-raised, not answered here: the
    request's transaction must see the exception to roll back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except FhirRefusal:
                raise
            except VigilError as exc:
                raise refusal_of(exc) from exc
            except RequestValidationError as exc:
                issues = [
                    Issue("structure", str(error["msg"]), field_path(error["loc"]) or None)
                    for error in exc.errors()
                ]
                raise FhirRefusal(400, issues) from exc
            except StarletteHTTPException as exc:
                code = ISSUE_OF_STATUS.get(exc.status_code, "processing")
                raise FhirRefusal(exc.status_code, [Issue(code, str(exc.detail))]) from exc

        return route_handler


def install(app: FastAPI) -> None:
    """Answer the FHIR routes' refusals as OperationOutcomes."""

    async def answer(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FhirRefusal)
        return outcome_response(exc)

    app.add_exception_handler(FhirRefusal, answer)


router = APIRouter(prefix="/fhir", tags=["FHIR input"], route_class=FhirRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": f"{text}: an OperationOutcome (application/fhir+json, not problem+json)",
        "content": {FHIR_JSON: {}},
    }
    for status, text in {
        400: "not a well-formed FHIR resource",
        401: "no valid token",
        403: "the caller may not record vitals",
        404: "no such dosing session among the caller's sites",
        409: "the reading's identifier is taken by other values",
        413: "more Bundle entries than VIGIL_BATCH_SIZE_MAX",
        422: "not a vital sign Vigil records, or a value no person can have",
        503: "the database is unavailable or busy; nothing was stored: send it again",
    }.items()
}
Resource = Annotated[dict[str, Any], Body(media_type=FHIR_JSON)]


def _source(session: SessionDep) -> str:
    return str(session.info.get("actor") or "fhir")


def _fhir(body: dict[str, Any], status_code: int, **headers: str) -> JSONResponse:
    return FhirJSONResponse(body, status_code=status_code, headers=headers)


@router.post(
    "/Observation",
    status_code=201,
    summary="Store one vital-signs Observation (FHIR R4) as a reading",
    response_class=FhirJSONResponse,
    responses={
        201: {"description": "stored; Location names it", "content": {FHIR_JSON: {}}},
        200: {"description": "a replay of a stored Observation", "content": {FHIR_JSON: {}}},
        **_ERRORS,
    },
    dependencies=[Depends(Authorize(Permission.VITALS_RECORD))],
)
def create_observation(
    session: SessionDep, principal: CurrentPrincipal, resource: Resource
) -> JSONResponse:
    """The Observation's identifier is the reading's id: a retry is stored once (200)."""
    stored = service.store_observation(session, principal, resource, _source(session))
    return _fhir(stored.observation, stored.status_code, Location=f"/api/v1/fhir/{stored.location}")


@router.post(
    "",
    summary="Process a batch or transaction Bundle of vital-signs Observations (FHIR R4)",
    response_class=FhirJSONResponse,
    responses={
        200: {
            "description": "a batch-response (each entry's own status and outcome) or "
            "transaction-response Bundle",
            "content": {FHIR_JSON: {}},
        },
        **_ERRORS,
    },
    dependencies=[Depends(Authorize(Permission.VITALS_RECORD))],
)
def process_bundle(
    session: SessionDep, principal: CurrentPrincipal, bundle: Resource
) -> JSONResponse:
    """A batch stores each entry on its own; a transaction stores all of them or none (an
    OperationOutcome names every entry at fault)."""
    return _fhir(service.process_bundle(session, principal, bundle, _source(session)), 200)


@router.get(
    "/Observation/{observation_id}",
    summary="One stored vital-signs Observation (FHIR R4), as the bulk export writes it",
    response_class=FhirJSONResponse,
    responses={200: {"content": {FHIR_JSON: {}}}, **_ERRORS},
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def read_observation(
    session: SessionDep, principal: CurrentPrincipal, observation_id: str
) -> JSONResponse:
    """``<reading id>-<bp|pulse|temp|resp|oxysat>``, the id a POST answered in Location."""
    return _fhir(service.read_observation(session, principal, observation_id), 200)
