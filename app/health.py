"""The health probes, at the root and without credentials.

- ``GET /healthz`` (liveness): the process answers. It touches no database, so an outage of the
  database never makes an orchestrator restart a healthy process. ``GET /api/v1/health`` is the
  same probe under its older name.
- ``GET /readyz`` (readiness): the database answers and its schema is not behind this code's
  migrations. A database migrated by a newer release (a revision this code does not know) is
  still ready, so the old replicas of a rolling deploy keep serving. The probe takes a pooled
  connection of its own, not a place among the request transactions (app/db.py), and fails
  within the engine's connect timeout when the database is down.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.auth.deps import Anyone
from app.checked_input import CheckedRoute
from app.db import get_reader_engine
from app.errors import PROBLEM_JSON, DatabaseUnavailable, TryLater
from app.migrations import SchemaState, schema_problem, schema_state
from app.outages import is_outage
from app.schemas import ReadModel

_probes: dict[str, Any] = {
    "tags": ["health"],
    "dependencies": [Depends(Anyone())],
    "route_class": CheckedRoute,
}
router = APIRouter(**_probes)
api_router = APIRouter(**_probes)  # under /api/v1
ProbeEngine = Annotated[Engine, Depends(get_reader_engine)]
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Not ready (problem+json)", "content": {PROBLEM_JSON: {}}}
}


class SchemaNotReady(TryLater):
    title = "Database schema not ready"
    slug = "schema-not-ready"


class Health(ReadModel):
    status: str


class Readiness(ReadModel):
    status: SchemaState  # current, or ahead (migrated by a newer release)
    schema_revisions: list[str]


@router.get("/healthz", response_model=Health)
@api_router.get("/health", response_model=Health)
def liveness() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=NOT_READY)
def readiness(engine: ProbeEngine) -> Readiness:
    try:
        with engine.connect() as connection:
            state, revisions = schema_state(connection)
    except SQLAlchemyError as exc:
        if not is_outage(exc):
            raise
        raise DatabaseUnavailable(
            "the database is not answering; check that it is running and reachable at "
            "VIGIL_DATABASE_URL"
        ) from exc
    problem = schema_problem(state, revisions)
    if problem is not None:
        raise SchemaNotReady(problem)
    return Readiness(status=state, schema_revisions=sorted(revisions))
