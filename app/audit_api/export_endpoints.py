"""`GET /audit-records/export`: the audit trail as an export an auditor verifies offline (NDJSON),
and its ODM 1.3.2 rendering. Both are audit events of their own, committed before the body
streams; values the caller is not entitled to are withheld (app/audit/withheld.py)."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.audit import odm, trail_export
from app.audit.withheld import Withheld
from app.auth.deps import Authorize, CurrentPrincipal
from app.auth.principal import Principal
from app.checked_input import CheckedRoute
from app.db import SessionDep, get_export_sessionmaker
from app.errors import Forbidden
from app.permissions import AUDIT_EXPORT_REVEALS, Permission

router = APIRouter(tags=["audit"], route_class=CheckedRoute)

NDJSON = "application/x-ndjson"
ODM_XML = "application/xml"


def trail_readers() -> trail_export.Readers:
    """Where the trail is read: a snapshot of its own (tests read their own transaction)."""
    factory: Callable[[], Session] = get_export_sessionmaker()
    return factory


TrailReaders = Annotated[trail_export.Readers, Depends(trail_readers)]
Reveal = Annotated[
    list[Withheld],
    Query(
        description="what to include that is withheld by default, each only for the roles "
        "entitled to it: arms (unblinded roles), note_text (medical monitor), client_address "
        "(administrator). Withheld values are replaced by their salted commitments, so the "
        "chain verifies either way",
    ),
]


def entitled(principal: Principal, reveal: list[Withheld]) -> frozenset[Withheld]:
    for kind in reveal:
        if principal.role not in AUDIT_EXPORT_REVEALS[kind.value]:
            roles = ", ".join(sorted(AUDIT_EXPORT_REVEALS[kind.value])) or "no role"
            raise Forbidden(
                f"the {principal.role} role may not reveal {kind.value} in an audit export "
                f"(revealed to: {roles}); leave reveal={kind.value} out to get it withheld"
            )
    return frozenset(reveal)


@router.get(
    "/audit-records/export",
    summary="The whole audit trail as NDJSON with hashes and signatures, to verify offline",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}}},
    dependencies=[Depends(Authorize(Permission.AUDIT_READ))],
)
def export_audit_trail(
    session: SessionDep,
    principal: CurrentPrincipal,
    readers: TrailReaders,
    reveal: Reveal = [],  # noqa: B006 - FastAPI copies query defaults
) -> StreamingResponse:
    """Each record with its sequence, previous hash and record hash, then every e-signature;
    `vigil audit verify --file` (or the script in docs/audit-trail.md) checks it without the
    server. The export itself is audited (who, what was revealed) and is in the file."""
    revealed = entitled(principal, reveal)
    event_id = trail_export.record_export(session, revealed, "ndjson")
    return StreamingResponse(
        trail_export.export_chunks(readers, event_id, revealed),
        media_type=NDJSON,
        headers={"Content-Disposition": 'attachment; filename="audit-trail.ndjson"'},
    )


@router.get(
    "/audit-records/export.xml",
    summary="The audit trail as CDISC ODM 1.3.2 (AuditRecord, Signature)",
    response_class=StreamingResponse,
    responses={200: {"content": {ODM_XML: {}}}},
    dependencies=[Depends(Authorize(Permission.AUDIT_READ))],
)
def export_audit_trail_odm(
    session: SessionDep, principal: CurrentPrincipal, readers: TrailReaders
) -> StreamingResponse:
    """Each audit record as an ODM AuditRecord (who, where, when, why, and in SourceID the
    record's place in the hash chain), each e-signature as an ODM Signature; the users and
    signature meanings in AdminData. Carries no recorded values, so nothing is withheld."""
    event_id = trail_export.record_export(session, frozenset(), "odm")
    return StreamingResponse(
        odm.odm_chunks(readers, event_id),
        media_type=ODM_XML,
        headers={"Content-Disposition": 'attachment; filename="audit-trail.odm.xml"'},
    )
