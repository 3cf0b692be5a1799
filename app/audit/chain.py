"""The audit hash chain: each record's hash covers the previous record's hash and its own content.

Two canonical forms, told apart by the record's ``chain_version``; both are frozen, since records
written under them must verify forever (a change needs a version 3, never an edit here):

- version 1 hashes every field in the clear; records written before the cut-over keep it.
- version 2 (every record from the cut-over on) hashes the values listed in ``app.audit.withheld``
  only through salted commitments, and its own version, so an export may withhold them and still
  verify. A version-1 record after a version-2 one breaks the chain: the form never goes back.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from app.audit.values import jsonable
from app.audit.withheld import (
    CLIENT_ADDRESS,
    commitment,
    committed_paths,
    new_salt,
    value_at,
)

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 2  # the form new records are written in
CHAIN_VERSIONS = (1, 2)
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


def _dumps(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _fields(record: Any) -> dict[str, Any]:
    return {
        name: getattr(record, name) if name in _JSON_FIELDS else jsonable(getattr(record, name))
        for name in CANONICAL_FIELDS
    }


def commitments(record: Any) -> dict[str, str]:
    """A chain-2 record's commitments by path: computed from the value and its salt where the
    record holds both (``salts``), taken as given where the value was withheld
    (``withheld``, on a record read back from an export)."""
    given: dict[str, str] = dict(getattr(record, "withheld", None) or {})
    for path, salt in (record.salts or {}).items():
        try:
            given[path] = commitment(salt, value_at(record, path))
        except KeyError:  # a salted value gone from the record: it was altered
            given[path] = "missing"
    return given


def canonical_v2(record: Any) -> bytes:
    committed = commitments(record)
    content = _fields(record)
    for side in ("before", "after"):
        values = content[side]
        if values is not None:
            content[side] = {
                key: value for key, value in values.items() if f"{side}.{key}" not in committed
            }
    if CLIENT_ADDRESS in committed:
        content[CLIENT_ADDRESS] = None
    content["chain_version"] = 2
    content["commitments"] = committed
    return _dumps(content)


def canonical(record: Any) -> bytes:
    if chain_version(record) == 2:
        return canonical_v2(record)
    return _dumps(_fields(record))


def chain_version(record: Any) -> int:
    return getattr(record, "chain_version", None) or 1


def record_hash(previous_hash: str, record: Any) -> str:
    return hashlib.sha256(previous_hash.encode() + b"\n" + canonical(record)).hexdigest()


def link(record: Any, sequence: int, previous_hash: str, version: int = CHAIN_VERSION) -> str:
    """Give a new ``record`` its place in the chain, in the current form unless ``version``
    says otherwise (migration 0002 chained the records written before the chain existed in
    version 1); in version 2 its values to commit to get fresh salts. Returns its hash (the next
    record's previous)."""
    record.chain_version = version
    record.salts = None
    if version == 2:
        paths = committed_paths(
            record.entity_type, record.before, record.after, record.client_address
        )
        record.salts = {path: new_salt() for path in paths} or None
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
    """Walk records in sequence order; the first one that does not chain, or None. A record
    whose content cannot be checked (``unverifiable``: a version-1 record exported with values
    withheld) is taken on its hash, its link to the next record still checked."""
    expected_sequence, previous, version = 1, GENESIS_HASH, 1
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
        if chain_version(record) not in CHAIN_VERSIONS or chain_version(record) < version:
            return Break(*where, f"chain version {chain_version(record)} after version {version}")
        version = chain_version(record)
        if (
            not getattr(record, "unverifiable", False)
            and record_hash(previous, record) != record.record_hash
        ):
            return Break(*where, "content does not match its hash (the record was altered)")
        expected_sequence, previous = expected_sequence + 1, record.record_hash
    return None
