"""GET /api/v1/exports/fhir/{ResourceType}.ndjson?study=CODE: FHIR R4 bulk data, one NDJSON
file per resource type (docs/exports.md).

The export is audited first: the request's transaction records who pulled which resource type
of which study (and, when arms are shown, a ``read_unblinded`` record) and commits before the
first byte is sent. The resources are then read on a connection of their own, which stays open
while the response streams (a request-scoped dependency) and never writes.
"""

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.audit.recorder import record_event
from app.auth import blinding
from app.auth.deps import Authorize, CurrentPrincipal
from app.checked_input import CheckedRoute
from app.db import SessionDep, get_export_sessionmaker
from app.errors import NotFound
from app.exports.fhir.stream import ResourceType, shows_arms, study_by_code, study_resources
from app.permissions import Permission

router = APIRouter(tags=["exports"], route_class=CheckedRoute)

NDJSON = "application/fhir+ndjson"
EXPORT_ACTION = "export"


def export_reader() -> Iterator[Session]:
    """A read-only session for the export's rows, open until the response has streamed, reading
    one snapshot (app.db.get_export_sessionmaker), as the SDTM export does."""
    with get_export_sessionmaker()() as session:
        yield session


ExportReader = Annotated[Session, Depends(export_reader)]


def ndjson_lines(resources: Iterator[dict[str, object]]) -> Iterator[bytes]:
    for resource in resources:
        yield json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@router.get(
    "/exports/fhir/{resource_type}.ndjson",
    dependencies=[Depends(Authorize(Permission.EXPORT_READ))],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "FHIR R4 resources of one type, one JSON resource a line (FHIR Bulk "
            "Data NDJSON); arms are left out of ResearchSubject for blinded callers",
            "content": {NDJSON: {}},
        },
        404: {"description": "no study has that code"},
    },
)
def export_fhir(
    session: SessionDep,
    reader: ExportReader,
    principal: CurrentPrincipal,
    resource_type: ResourceType,
    study: Annotated[str, Query(description="the study's code, e.g. MAPP-1")],
) -> StreamingResponse:
    """Every resource of one type of a study, streamed as NDJSON; the export is audited."""
    found = study_by_code(session, study)
    if found is None:
        raise NotFound(f"no study has the code {study!r}; GET /api/v1/studies lists the codes")
    arms = shows_arms(resource_type, principal)
    record_event(
        session,
        EXPORT_ACTION,
        "studies",
        str(found.id),
        after={"format": "fhir-ndjson", "resource_type": resource_type.value, "arms": arms},
    )
    if arms:
        blinding.audit_unblinded_read(session, "studies", str(found.id), ["arm_code"])
    return StreamingResponse(
        ndjson_lines(study_resources(reader, found, resource_type, principal)),
        media_type=NDJSON,
        headers={"Content-Disposition": f'attachment; filename="{resource_type.value}.ndjson"'},
    )
