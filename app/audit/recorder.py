"""Writes the audit record of every insert and update of audited rows, in the same flush.

Services never call this: a `before_flush` listener sees every change the unit of work is about
to write, so no code path can forget the audit. The reason for a change is set on the session
(`with change_reason(session, "...")`); hard deletes of audited rows are refused outright.

The listeners (``SESSION_LISTENERS``) are installed by app.listeners.install(), which every Vigil
process calls before it writes: importing this module registers nothing.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import insert, inspect, select, text
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlalchemy.orm.attributes import set_committed_value

from app.audit.chain import GENESIS_HASH, link
from app.audit.signed_records import void_signatures_of_changed_records
from app.audit.values import jsonable
from app.clock import utcnow
from app.models.audit import AuditRecord
from app.models.base import Audited
from app.models.conflicts import insert_skipping_conflicts

AUDIT_CHAIN_LOCK = 0x56494749  # "VIGI": the advisory lock that serialises chain appends


Row = TypeVar("Row", bound=Audited)


class HardDeleteRefused(RuntimeError):
    pass


@contextmanager
def change_reason(session: Session, reason: str, action: str | None = None) -> Iterator[None]:
    """Attach a reason (and optionally an action name) to the changes flushed inside the block."""
    session.info["audit_reason"], session.info["audit_action"] = reason, action
    try:
        session.flush()
        yield
        session.flush()
    finally:
        session.info.pop("audit_reason", None)
        session.info.pop("audit_action", None)


def _columns(obj: Audited) -> list[str]:
    excluded = type(obj).__audit_exclude__
    return [c.key for c in inspect(obj).mapper.column_attrs if c.key not in excluded]


def _snapshot(obj: Audited) -> dict[str, Any]:
    return {key: jsonable(getattr(obj, key)) for key in _columns(obj)}


def _changes(obj: Audited) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key in _columns(obj):
        history = state.attrs[key].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old != new:
            before[key], after[key] = jsonable(old), jsonable(new)
    return before, after


def _record(session: Session, action: str, obj: Audited, before: Any, after: Any) -> AuditRecord:
    return AuditRecord(
        occurred_at=utcnow(),
        actor=session.info.get("actor", "system"),
        action=action,
        entity_type=type(obj).__tablename__,  # type: ignore[attr-defined]
        entity_id=str(obj.id),  # type: ignore[attr-defined]
        before=before,
        after=after,
        reason=session.info.get("audit_reason"),
        request_id=session.info.get("request_id"),
        client_address=session.info.get("client_address"),
    )


def record_event(
    session: Session,
    action: str,
    entity_type: str,
    entity_id: str,
    *,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditRecord:
    """Audit something that is not a row change: a login, a failed login, a read of unblinded
    data, an export. Written (and chained) with the transaction's next flush."""
    record = AuditRecord(
        occurred_at=utcnow(),
        actor=session.info.get("actor", "system"),
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=None,
        after=jsonable(after) if after is not None else None,
        reason=reason,
        request_id=session.info.get("request_id"),
        client_address=session.info.get("client_address"),
    )
    session.add(record)
    return record


def insert_audited(session: Session, rows: Sequence[Row]) -> list[Row]:
    """Insert new rows of one model in one statement, each with its audit record as the flush
    listener would write it: the hot path of a burst of readings, where the unit of work's
    bookkeeping of each object costs more than the insert. The rows then join the session as
    stored objects, as if flushed: a change made to one later is written and audited.

    A row whose id is already stored (by a transaction that committed after the caller looked,
    or waited for here until it commits) is left out, without an audit record, instead of
    failing the transaction: returns those rows, for the caller to sort out against what is
    stored. So no savepoint is needed around the insert."""
    if not rows:
        return []
    model = type(rows[0])
    values = _values(model, rows)
    key = model.id  # type: ignore[attr-defined]
    stmt = insert_skipping_conflicts(session, model, key).returning(key)
    inserted = set(session.scalars(stmt, values))
    taken = [row for row in rows if row.id not in inserted]  # type: ignore[attr-defined]
    rows = [row for row in rows if row.id in inserted]  # type: ignore[attr-defined]
    _pending(session).extend(_record(session, "create", row, None, _snapshot(row)) for row in rows)
    unset = [
        column.key
        for column in inspect(model).columns
        if column.key not in values[0] and column.server_default is None
    ]
    for row in rows:
        for name in unset:  # stored as NULL: known without loading it back
            set_committed_value(row, name, None)
    session.add_all(rows)
    # What a flush does with the objects it has inserted: they become persistent, and the
    # transaction (or savepoint) that inserted them forgets them again if it rolls back.
    session._register_persistent({inspect(row) for row in rows})
    return taken


def _values(model: type[Any], rows: Sequence[Any]) -> list[dict[str, Any]]:
    """The column values of new objects of ``model``: those set on any of them (a column never
    set keeps its server default)."""
    keys: list[str] = [column.key for column in inspect(model).column_attrs]
    given = [key for key in keys if any(key in row.__dict__ for row in rows)]
    return [{key: getattr(row, key) for key in given} for row in rows]


def _audit_before_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, Audited | AuditRecord):
            raise HardDeleteRefused(
                f"{type(obj).__name__} rows are never deleted; mark them entered in error"
            )
    # E-signatures of signed records this flush changes are voided first, so the loop below
    # audits the voiding with the change (21 CFR 11.70).
    void_signatures_of_changed_records(session)
    # events recorded explicitly (record_event) join the chain with the generated records
    records = [o for o in session.new if isinstance(o, AuditRecord) and o.sequence is None]
    records += [
        _record(session, "create", obj, None, _snapshot(obj))
        for obj in session.new
        if isinstance(obj, Audited)
    ]
    action = session.info.get("audit_action") or "update"
    for obj in session.dirty:
        if isinstance(obj, AuditRecord):
            raise HardDeleteRefused("audit records are append-only")
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if after:
                records.append(_record(session, action, obj, before, after))
    if records:
        # Written and chained when the transaction commits (see _append_at_commit); a record
        # that record_event added leaves the session until then.
        for record in records:
            if record in session:
                session.expunge(record)
        _pending(session).extend(records)


_PENDING = "audit_pending"
_MARKS = "audit_savepoint_marks"
_RELEASED = "audit_savepoints_released"


def _pending(session: Session) -> list[AuditRecord]:
    pending: list[AuditRecord] = session.info.setdefault(_PENDING, [])
    return pending


def pending_records(session: Session) -> list[AuditRecord]:
    """The audit records the transaction will chain at commit, the session flushed first: what
    it changed, without what rolled-back savepoints undid. Not yet numbered."""
    session.flush()
    return list(_pending(session))


def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(_pending(session))


def _note_released_savepoint(session: Session) -> None:
    nested = session.get_nested_transaction()
    if nested is not None:  # a savepoint released (its changes stay)
        session.info.setdefault(_RELEASED, set()).add(id(nested))


def _drop_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    """The records of changes a rollback undid go with them: a savepoint that ends without
    being released was rolled back (a failed flush inside it rolls it back without saying)."""
    if transaction.nested:
        mark = session.info.get(_MARKS, {}).pop(id(transaction), None)
        released = session.info.get(_RELEASED, set())
        if id(transaction) in released:
            released.discard(id(transaction))
        elif mark is not None:
            del _pending(session)[mark:]
    elif transaction.parent is None:
        for key in (_PENDING, _MARKS, _RELEASED):
            session.info.pop(key, None)


def _append_at_commit(session: Session) -> None:
    """Chain and write the transaction's audit records, last thing before it commits: the lock
    that serialises appends to the chain is then held for the append and the commit only."""
    if session.in_nested_transaction():
        return
    session.flush()  # the last changes' records join the pending ones
    records = session.info.pop(_PENDING, None)
    if records:
        _chain(session, records)
        # Core statements on the session's connection, here and in _chain: the records are
        # plain values, and the ORM's handling of a statement costs more than the append
        # (docs/architecture.md, "The snapshot's plain queries").
        connection = session.connection()
        connection.execute(insert(AuditRecord), _values(AuditRecord, records))


SESSION_LISTENERS = (
    ("before_flush", _audit_before_flush),
    ("after_transaction_create", _mark_savepoint),
    ("after_commit", _note_released_savepoint),
    ("after_transaction_end", _drop_rolled_back),
    ("before_commit", _append_at_commit),
)


# Built once: every audited commit runs both.
_CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_AUDIT = AuditRecord.__table__.c
_CHAIN_HEAD = select(_AUDIT.sequence, _AUDIT.record_hash).order_by(_AUDIT.sequence.desc()).limit(1)


def _chain(session: Session, records: list[AuditRecord]) -> None:
    """Append to the hash chain. Writers are serialised: on PostgreSQL by a transaction-level
    advisory lock, on SQLite by the write lock every transaction takes at BEGIN IMMEDIATE."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_CHAIN_LOCK, {"key": AUDIT_CHAIN_LOCK})
    head = connection.execute(_CHAIN_HEAD).first()
    sequence, previous = (head[0], head[1]) if head else (0, GENESIS_HASH)
    for record in records:
        sequence += 1
        previous = link(record, sequence, previous)
