"""The audit hash chain: each record's hash covers the previous record's hash and its own content.

The canonical form below is frozen: records written under it must verify forever. A change to it
needs a new chain version, never an edit here.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from app.audit.values import jsonable

GENESIS_HASH = "0" * 64
CANONICAL_FIELDS = (
    "id",
    "sequence",
    "occurred_at",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
    "reason",
    "request_id",
    "client_address",
)


class Chainable(Protocol):
    sequence: int
    previous_hash: str
    record_hash: str


_JSON_FIELDS = frozenset({"before", "after"})  # written as JSON values already


def canonical(record: Any) -> bytes:
    content = {
        name: getattr(record, name) if name in _JSON_FIELDS else jsonable(getattr(record, name))
        for name in CANONICAL_FIELDS
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(previous_hash: str, record: Any) -> str:
    return hashlib.sha256(previous_hash.encode() + b"\n" + canonical(record)).hexdigest()


def link(record: Any, sequence: int, previous_hash: str) -> str:
    """Give ``record`` its place in the chain; returns its hash (the next record's previous)."""
    record.sequence = sequence
    record.previous_hash = previous_hash
    record.record_hash = record_hash(previous_hash, record)
    return str(record.record_hash)


@dataclass(frozen=True)
class Break:
    sequence: int
    record_id: str
    problem: str

    def __str__(self) -> str:
        return f"audit record #{self.sequence} ({self.record_id}): {self.problem}"


def first_break(records: Iterable[Any]) -> Break | None:
    """Walk records in sequence order; the first one that does not chain, or None."""
    expected_sequence, previous = 1, GENESIS_HASH
    for record in records:
        where = (record.sequence, str(record.id))
        if record.sequence != expected_sequence:
            what = "missing" if record.sequence > expected_sequence else "repeated"
            return Break(
                *where,
                f"sequence jumps from {expected_sequence - 1} to "
                f"{record.sequence}: record(s) {what} before it",
            )
        if record.previous_hash != previous:
            return Break(
                *where,
                "previous_hash does not match the record before it "
                "(a record was removed or inserted)",
            )
        if record_hash(previous, record) != record.record_hash:
            return Break(*where, "content does not match its hash (the record was altered)")
        expected_sequence, previous = expected_sequence + 1, record.record_hash
    return None
