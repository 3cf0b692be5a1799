"""The audit trail as an export an auditor verifies without Vigil's server: NDJSON, one line per
record with its sequence, previous hash and record hash, then one line per e-signature.

Line 1 is a header; it describes the export and is checked against the trail it heads, which
holds the export's own audit event (who pulled it, what was revealed): nothing in the header is
taken on trust. Values an export is not entitled to (``app.audit.withheld``) are left
out of chain-2 records and replaced by their commitments; those entitled carry the value and its
salt. docs/audit-trail.md describes the format and how to verify it; app/audit/export_check.py
does that.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from app.audit.chain import CANONICAL_FIELDS
from app.audit.values import jsonable
from app.audit.withheld import (
    CLIENT_ADDRESS,
    Withheld,
    commitment,
    committed_paths,
    kind_of,
    value_at,
)

FORMAT = "vigil-audit-trail"
FORMAT_VERSION = 1
EXPORTED = "export_audit_trail"  # the action of the export's own audit event
# the keys of a record line: the canonical fields, and what the chain and the withholding add
RECORD_KEYS = frozenset(
    {*CANONICAL_FIELDS, "type", "chain_version", "salts", "withheld", "unverifiable"}
    | {"previous_hash", "record_hash"}
)
SIGNATURE_FIELDS = (
    "entity_type",
    "entity_id",
    "signer_id",
    "printed_name",
    "meaning",
    "signed_at",
    "record_hash",
    "status",
    "voided_at",
    "void_reason",
)


def dumps(line: dict[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class ExportEvent:
    """What the export's own audit event says (its ``after``), and so what the header says."""

    exported_by: str
    revealed: tuple[Withheld, ...]

    def after(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "revealed": sorted(self.revealed),
            "withheld": sorted(set(Withheld) - set(self.revealed)),
        }


def header(
    event: Any, last: Any, records: int, signatures: int, actors: dict[str, str]
) -> dict[str, Any]:
    """The header of an export pulled by ``event`` (its own audit record, in the export) whose
    last record is ``last``."""
    after = event.after or {}
    return {
        "type": "header",
        "format": after.get("format"),
        "format_version": after.get("format_version"),
        "event": jsonable(event.id),
        "exported_at": jsonable(event.occurred_at),
        "exported_by": event.actor,
        "revealed": after.get("revealed"),
        "withheld": after.get("withheld"),
        "records": records,
        "signatures": signatures,
        "head": {"sequence": last.sequence, "record_hash": last.record_hash},
        "actors": dict(sorted(actors.items())),
    }


def _remove(line: dict[str, Any], path: str) -> None:
    if path == CLIENT_ADDRESS:
        line[CLIENT_ADDRESS] = None
    else:
        side, _, key = path.partition(".")
        line[side].pop(key, None)


def record_line(row: Any, revealed: frozenset[Withheld]) -> dict[str, Any]:
    """One audit record as an export line, with what ``revealed`` does not cover withheld."""
    version = row.chain_version or 1
    line: dict[str, Any] = {
        "type": "record",
        "sequence": row.sequence,
        "chain_version": version,
        "id": jsonable(row.id),
        "occurred_at": jsonable(row.occurred_at),
        "actor": row.actor,
        "action": row.action,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "before": dict(row.before) if row.before is not None else None,
        "after": dict(row.after) if row.after is not None else None,
        "reason": row.reason,
        "request_id": row.request_id,
        "client_address": row.client_address,
        "salts": {},
        "withheld": {},
        "unverifiable": False,
        "previous_hash": row.previous_hash,
        "record_hash": row.record_hash,
    }
    paths = committed_paths(row.entity_type, row.before, row.after, row.client_address)
    if version == 1:  # hashed in the clear: a withheld value leaves the record unverifiable
        for path, kind in paths.items():
            if kind not in revealed:
                _remove(line, path)
                line["unverifiable"] = True
        return line
    for path, salt in (row.salts or {}).items():
        if kind_of(path) in revealed:
            line["salts"][path] = salt
        else:
            line["withheld"][path] = commitment(salt, value_at(row, path))
            _remove(line, path)
    return line


def signature_line(row: Any) -> dict[str, Any]:
    line = {"type": "signature", "id": jsonable(row.id)}
    line.update({name: jsonable(getattr(row, name)) for name in SIGNATURE_FIELDS})
    return line


def export_lines(
    head: dict[str, Any],
    records: Iterable[Any],
    signatures: Iterable[Any],
    revealed: frozenset[Withheld],
) -> Iterator[str]:
    """The export's lines: ``head`` (see `header`), the records in sequence order, then the
    signatures."""
    yield dumps(head)
    for row in records:
        yield dumps(record_line(row, revealed))
    for row in signatures:
        yield dumps(signature_line(row))
