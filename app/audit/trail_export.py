"""Pull the audit trail out of the database as an export (app/audit/export.py describes the
format): the export's own audit event is written in the caller's transaction, and the trail is
read afterwards in a snapshot of its own that holds that event, streamed in constant memory."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from itertools import islice
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.audit.export import EXPORTED, ExportEvent, export_lines, header
from app.audit.recorder import record_event
from app.audit.withheld import Withheld
from app.errors import NotFound
from app.ids import new_id
from app.models import AuditRecord, Signature, User

Readers = Callable[[], AbstractContextManager[Session]]
BATCH = 1000
LINES_PER_CHUNK = 200


def record_export(session: Session, revealed: frozenset[Withheld], file_format: str) -> uuid.UUID:
    """The export's audit event (who, what was revealed), in ``session``'s transaction; its
    id, by which the export finds it once that transaction has committed."""
    event_id = new_id()
    event = ExportEvent(session.info.get("actor", "system"), tuple(revealed))
    after = event.after() | {"rendering": file_format}
    record = record_event(session, EXPORTED, "audit_records", "trail", after=after)
    record.id = event_id
    return event_id


def records_query(through: int | None = None) -> Select[Any]:
    stmt = select(AuditRecord.__table__).order_by(AuditRecord.sequence)
    if through is not None:
        stmt = stmt.where(AuditRecord.sequence <= through)
    return stmt.execution_options(yield_per=BATCH)


def signatures_query() -> Select[Any]:
    return select(Signature.__table__).order_by(Signature.id).execution_options(yield_per=BATCH)


def exported_event(session: Session, event_id: uuid.UUID) -> AuditRecord:
    event = session.scalar(select(AuditRecord).where(AuditRecord.id == event_id))
    if event is None:
        raise NotFound(f"the audit event {event_id} of this export was not committed")
    return event


def actor_names(session: Session) -> dict[str, str]:
    """Each actor of the trail that is a user, with the user's name (Part 11: who did it)."""
    names = {
        name: shown for name, shown in session.execute(select(User.username, User.display_name))
    }
    actors = session.scalars(select(AuditRecord.actor).distinct())
    return {
        actor: names[actor.partition(":")[2]]
        for actor in actors
        if actor.partition(":")[2] in names
    }


def export_chunks(
    readers: Readers, event_id: uuid.UUID, revealed: frozenset[Withheld]
) -> Iterator[bytes]:
    """The NDJSON export, in chunks of lines, read in one snapshot."""
    with readers() as session:
        event = exported_event(session, event_id)
        last = session.scalars(
            select(AuditRecord).order_by(AuditRecord.sequence.desc()).limit(1)
        ).first()
        records = session.scalar(select(func.count()).select_from(AuditRecord)) or 0
        signatures = session.scalar(select(func.count()).select_from(Signature)) or 0
        head = header(event, last, records, signatures, actor_names(session))
        lines = export_lines(
            head,
            _streamed(session, records_query()),
            _streamed(session, signatures_query()),
            revealed,
        )
        while chunk := "".join(islice(lines, LINES_PER_CHUNK)):
            yield chunk.encode()


def _streamed(session: Session, stmt: Select[Any]) -> Iterator[Any]:
    """The rows of ``stmt``, its query run only once the rows are asked for (one open cursor at
    a time)."""
    yield from session.execute(stmt)
