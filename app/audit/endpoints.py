"""Read access to the audit trail; there is deliberately no write route."""

import uuid
from datetime import datetime

from fastapi import APIRouter
from sqlalchemy import select

from app.audit.schemas import AuditRecord
from app.db import SessionDep
from app.errors import NotFound
from app.models import AuditRecord as AuditRow
from app.models import Base
from app.pagination import Page, PageDep, paginate

router = APIRouter(tags=["audit"])

AUDITED_TABLES = sorted(
    mapper.class_.__tablename__
    for mapper in Base.registry.mappers
    if mapper.class_.__name__ != "AuditRecord"
)


@router.get("/audit-records", response_model=Page[AuditRecord])
def list_audit_records(
    session: SessionDep,
    page: PageDep,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
) -> dict[str, object]:
    """The audit trail in the order it was written, optionally filtered."""
    stmt = select(AuditRow)
    if entity_type:
        stmt = stmt.where(AuditRow.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditRow.entity_id == entity_id)
    if actor:
        stmt = stmt.where(AuditRow.actor == actor)
    if since:
        stmt = stmt.where(AuditRow.occurred_at >= since)
    items, cursor = paginate(session, stmt, AuditRow.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/history/{entity_type}/{entity_id}", response_model=list[AuditRecord])
def history(session: SessionDep, entity_type: str, entity_id: uuid.UUID) -> list[AuditRow]:
    """Every recorded version of one record, oldest first: what it was, who changed it, why."""
    if entity_type not in AUDITED_TABLES:
        raise NotFound(f"unknown record type {entity_type!r}; known: {', '.join(AUDITED_TABLES)}")
    stmt = (
        select(AuditRow)
        .where(AuditRow.entity_type == entity_type, AuditRow.entity_id == str(entity_id))
        .order_by(AuditRow.id)
    )
    records = list(session.scalars(stmt))
    if not records:
        raise NotFound(f"no {entity_type} record {entity_id} exists")
    return records
