"""Read access to the audit trail; there is deliberately no write route.

Treatment arms in the recorded values are masked for blinded readers (app/auth/blinding.py); an
unblinded reader's read of them is itself audited.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.schemas import AuditRecordRead
from app.auth import blinding
from app.auth.deps import Authorize, CurrentPrincipal, ScopedHistory
from app.auth.principal import Principal
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.errors import NotFound
from app.models import AuditRecord, Base
from app.models.base import Audited
from app.pagination import Page, PageDep, PageParams, paginate
from app.permissions import Permission

router = APIRouter(tags=["audit"], route_class=CheckedRoute)

AUDITED_TABLES = sorted(
    mapper.tables[0].name for mapper in Base.registry.mappers if issubclass(mapper.class_, Audited)
)


@router.get(
    "/audit-records",
    response_model=Page[AuditRecordRead],
    dependencies=[Depends(Authorize(Permission.AUDIT_READ))],
)
def list_audit_records(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
) -> dict[str, object]:
    """The audit trail in the order it was written, optionally filtered (readers of the whole
    trail see every site)."""
    stmt = select(AuditRecord)
    if entity_type:
        stmt = stmt.where(AuditRecord.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditRecord.entity_id == entity_id)
    if actor:
        stmt = stmt.where(AuditRecord.actor == actor)
    if since:
        stmt = stmt.where(AuditRecord.occurred_at >= since)
    items, cursor = paginate(session, stmt, AuditRecord.id, page)
    return {"items": audit_record_views(session, principal, items), "next_cursor": cursor}


@router.get(
    "/history/{entity_type}/{entity_id}",
    response_model=Page[AuditRecordRead],
    dependencies=[Depends(Authorize(Permission.HISTORY_READ))],
)
def history(
    session: SessionDep, principal: CurrentPrincipal, record: ScopedHistory, page: PageDep
) -> dict[str, object]:
    """Every recorded version of one record, oldest first: what it was, who changed it, why.
    Read like the record itself: a record of another site is not found."""
    items, cursor = history_page(session, principal, record, page)
    return {"items": items, "next_cursor": cursor}


def history_page(
    session: Session, principal: Principal, record: tuple[str, uuid.UUID], page: PageParams
) -> tuple[list[AuditRecordRead], str | None]:
    """One page of a record's history as this caller reads it (the API's and the web
    client's): ``record`` checked already (ScopedHistory); 404 if nothing was ever recorded."""
    entity_type, entity_id = record
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == entity_type, AuditRecord.entity_id == str(entity_id)
    )
    items, cursor = paginate(session, stmt, AuditRecord.id, page)
    if not items and page.cursor is None:
        raise NotFound(f"no {entity_type} record {entity_id} exists")
    return audit_record_views(session, principal, items), cursor


def audit_record_views(
    session: Session, principal: Principal, rows: Sequence[AuditRecord]
) -> list[AuditRecordRead]:
    """Audit records as this caller reads them: blinded fields of ``before``/``after`` masked
    for a blinded caller; for an unblinded one, each record whose arm it reveals is audited
    (once per record read)."""
    views = []
    revealed: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        view = AuditRecordRead.model_validate(row)
        if principal.unblinded:
            fields = blinding.revealed_fields(row.before) | blinding.revealed_fields(row.after)
            if fields:
                revealed.setdefault((row.entity_type, row.entity_id), set()).update(fields)
        else:
            view = view.model_copy(
                update={
                    "before": blinding.mask_values(row.before, unblinded=False),
                    "after": blinding.mask_values(row.after, unblinded=False),
                }
            )
        views.append(view)
    for (entity_type, entity_id), fields in revealed.items():
        blinding.audit_unblinded_read(session, entity_type, entity_id, fields)
    return views
