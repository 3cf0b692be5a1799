"""Signed records in the audit trail: the content a signature covers, and voiding on change.

21 CFR 11.70: a signature is linked to its record by entity type, id and the SHA-256 of the exact
version signed (:func:`record_hash`), so it cannot be carried over to a changed one. The audit
listener (app/audit/recorder.py) calls :func:`void_signatures_of_changed_records` before it
audits a flush, so a change to a signed record voids its signatures visibly, in the same
transaction. Signing itself (re-authentication, who may sign what) is app/signatures/service.py.
"""

import hashlib
import json
import uuid
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history

from app import clock
from app.audit.values import jsonable
from app.models import AdverseEvent, DosingSession, Signature, TherapistNote
from app.models.clinical import MEDDRA_COLUMNS
from app.models.signature import SignatureStatus

Signable = AdverseEvent | TherapistNote | DosingSession
SIGNABLE = (AdverseEvent, TherapistNote, DosingSession)

# --- the record hash ----------------------------------------------------------------------------

# Bookkeeping that changes without the record's content changing; with the columns the model keeps
# out of its audit trail (__audit_exclude__), it is neither hashed nor a reason to void. MedDRA
# coding is the coder's classification, not what the investigator signed: it is audited, but
# coding an event leaves its signatures valid (and a record signed before the coding columns
# existed hashes as it did).
NOT_HASHED = frozenset({"updated_at", *MEDDRA_COLUMNS})


def entity_type(record: Signable) -> str:
    return type(record).__tablename__


@cache
def hashed_columns(model: type[Signable]) -> tuple[str, ...]:
    """The columns a signature covers: every audited column of the record but bookkeeping."""
    excluded = NOT_HASHED | model.__audit_exclude__
    return tuple(sorted(c.key for c in model.__mapper__.column_attrs if c.key not in excluded))


def _canonical_value(value: Any) -> Any:
    return clock.as_utc(value).isoformat() if isinstance(value, datetime) else jsonable(value)


def canonical(record: Signable) -> bytes:
    """The record version as canonical JSON (sorted keys, no whitespace), with its entity type,
    so that equal content in another table hashes differently."""
    content = {
        "entity_type": entity_type(record),
        "record": {
            key: _canonical_value(getattr(record, key)) for key in hashed_columns(type(record))
        },
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Signable) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def verify(signature: Signature, record: Signable) -> bool:
    """The signature is valid and was made on this record, in the version it has now."""
    return (
        signature.status == SignatureStatus.VALID
        and signature.entity_type == entity_type(record)
        and signature.entity_id == record.id
        and signature.record_hash == record_hash(record)
    )


# --- voiding ------------------------------------------------------------------------------------


def changed_columns(record: Signable) -> list[str]:
    """The hashed columns this flush is about to change, in column order."""
    changed = []
    for key in hashed_columns(type(record)):
        history = get_history(record, key)
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old != new:
            changed.append(key)
    return changed


def void_signatures_of_changed_records(session: Session) -> None:
    """Void the valid signatures of every signed record this flush changes.

    Called by the audit listener (app/audit/recorder.py) before it audits the flush, so the
    voided signatures are audited with the change, in the same transaction. The changed records
    are locked first (PostgreSQL; SQLite serialises writers anyway): a signing that holds the
    record's lock commits before this reads the signatures, so none slips past (lock order: the
    record, then the audit chain).
    """
    changed: dict[uuid.UUID, tuple[type[Signable], list[str]]] = {}
    for obj in session.dirty:
        if isinstance(obj, SIGNABLE) and session.is_modified(obj, include_collections=False):
            columns = changed_columns(obj)
            if columns:
                changed[obj.id] = (type(obj), columns)
    if not changed:
        return
    with session.no_autoflush:
        for model in {model for model, _ in changed.values()}:
            ids = [key for key, (m, _) in changed.items() if m is model]
            session.execute(select(model.id).where(model.id.in_(ids)).with_for_update())
        signatures = session.scalars(
            select(Signature).where(
                Signature.entity_id.in_(changed), Signature.status == SignatureStatus.VALID.value
            )
        ).all()
    now = clock.utcnow()
    for signature in signatures:
        model, columns = changed[signature.entity_id]
        if signature.entity_type != model.__tablename__:
            continue
        signature.status = SignatureStatus.VOIDED.value
        signature.voided_at = now
        signature.void_reason = f"record changed after signing: {', '.join(columns)}"
