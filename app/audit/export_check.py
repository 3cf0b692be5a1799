"""Verify an exported audit trail (app/audit/export.py) offline: the hash chain of its records
(by the rules of `app.audit.verify`), then what the chain vouches for beyond itself: the header
(against the export's own audit event, its last record) and every e-signature (against the
audit records of its creation and voiding). Names the first thing that does not hold.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from app.audit.export import EXPORTED, RECORD_KEYS, SIGNATURE_FIELDS, dumps, header
from app.audit.verify import Head, VerifyResult, verify_records

HEADER_KEYS = frozenset(
    {
        "type",
        "format",
        "format_version",
        "event",
        "exported_at",
        "exported_by",
        "revealed",
        "withheld",
        "records",
        "signatures",
        "head",
        "actors",
    }
)
_SIGNATURE_KEYS = frozenset({"type", "id", *SIGNATURE_FIELDS})


class Damaged(ValueError):
    """A line of the export that is not what the format says: the file was damaged there."""


@dataclass(frozen=True)
class ExportVerdict:
    chain: VerifyResult | None  # None when the file could not be read as far as the chain
    problem: str | None  # the first thing that does not hold
    records: int = 0
    unverifiable: int = 0
    withheld: int = 0
    signatures: int = 0

    @property
    def intact(self) -> bool:
        return self.problem is None


@dataclass
class _Reader:
    """Reads the record lines for the chain walk, keeping what the later checks need."""

    lines: Iterator[tuple[int, str]]
    event_id: Any
    event: Any = None
    records: int = 0
    unverifiable: int = 0
    withheld: int = 0
    last: Any = None
    actors: set[str] = field(default_factory=set)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> state
    signed: dict[str, dict[str, Any]] = field(default_factory=dict)  # signature id -> state
    rest: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        for number, text in self.lines:
            line = _parse(number, text)
            if line.get("type") not in ("record", "signature"):
                raise Damaged(f"line {number} is neither a record nor a signature line")
            if line.get("type") != "record":
                self.rest.append((number, line))
                self.rest.extend((n, _parse(n, t)) for n, t in self.lines)
                return
            record = _record(number, line)
            self._note(record)
            yield record

    def _note(self, record: Any) -> None:
        self.records += 1
        self.unverifiable += record.unverifiable
        self.withheld += len(record.withheld)
        self.last = record
        if record.id == self.event_id:
            self.event = record
        self.actors.add(record.actor)
        if record.entity_type in ("users", "signatures"):
            states = self.users if record.entity_type == "users" else self.signed
            states.setdefault(record.entity_id, {}).update(record.after or {})

    def actor_names(self) -> dict[str, str]:
        """Each actor of the trail that is a user, with the name its user records give."""
        names = {
            state["username"]: state.get("display_name") or ""
            for state in self.users.values()
            if "username" in state
        }
        return {
            actor: names[actor.partition(":")[2]]
            for actor in self.actors
            if actor.partition(":")[2] in names
        }


def _parse(number: int, text: str) -> dict[str, Any]:
    try:
        line = json.loads(text)
    except ValueError as exc:
        raise Damaged(f"line {number} is not valid JSON ({exc})") from None
    if not isinstance(line, dict):
        raise Damaged(f"line {number} is not a JSON object")
    if dumps(line) != text:  # "1e0" for "1.0" reads the same, yet is an edit
        raise Damaged(f"line {number} is not written as Vigil writes its exports: it was edited")
    return line


def _record(number: int, line: dict[str, Any]) -> Any:
    if set(line) != RECORD_KEYS:
        odd = sorted(set(line) ^ RECORD_KEYS)
        raise Damaged(f"line {number}: a record line with unexpected or missing keys {odd}")
    typed = (
        isinstance(line["sequence"], int)
        and line["chain_version"] in (1, 2)
        and isinstance(line["salts"], dict)
        and isinstance(line["withheld"], dict)
        and isinstance(line["unverifiable"], bool)
        and all(isinstance(line[side], dict | None) for side in ("before", "after"))
    )
    if not typed:
        raise Damaged(f"line {number}: a record line whose values have the wrong types")
    return SimpleNamespace(**line)


def _numbered(lines: Iterable[str | bytes]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise Damaged(f"line {number} is not UTF-8") from None
        if text.strip():
            yield number, text


def verify_export(lines: Iterable[str | bytes], expect_head: Head | None = None) -> ExportVerdict:
    """The verdict on an export given as its lines."""
    numbered = _numbered(lines)
    try:
        first = next(numbered, None)
        if first is None:
            return ExportVerdict(None, "the file is empty: no header line")
        top = _parse(*first)
        if top.get("type") != "header" or set(top) != HEADER_KEYS:
            return ExportVerdict(None, "line 1 is not the header of a Vigil audit trail export")
    except Damaged as exc:
        return ExportVerdict(None, str(exc))
    reader = _Reader(numbered, top.get("event"))
    try:
        chain = verify_records(reader, expect_head)
    except Damaged as exc:
        after = f" (after record #{reader.last.sequence})" if reader.last is not None else ""
        return _verdict(reader, None, f"{exc}{after}: the file was damaged there")
    if chain.broken is not None:
        return _verdict(reader, chain, str(chain.broken))
    return _verdict(reader, chain, _beyond_chain(top, reader))


def _verdict(reader: _Reader, chain: VerifyResult | None, problem: str | None) -> ExportVerdict:
    signatures = len(reader.rest)
    return ExportVerdict(
        chain, problem, reader.records, reader.unverifiable, reader.withheld, signatures
    )


def _beyond_chain(top: dict[str, Any], reader: _Reader) -> str | None:
    event = reader.event
    if event is None or event.action != EXPORTED:
        return (
            f"the export's own audit event ({EXPORTED} {top['event']}) is not in it: records "
            "were removed, or the header was altered"
        )
    actors = reader.actor_names()
    expected = header(event, reader.last, reader.records, len(reader.rest), actors)
    for key in sorted(HEADER_KEYS):
        if top[key] != expected[key]:
            return (
                f"the header's {key!r} is {top[key]!r}, but the trail it heads says "
                f"{expected[key]!r}: the header was altered"
            )
    return _signatures(reader)


def _signatures(reader: _Reader) -> str | None:
    seen: set[str] = set()
    for number, line in reader.rest:
        if line.get("type") != "signature" or set(line) != _SIGNATURE_KEYS:
            return f"line {number} is not a signature line: the file was damaged there"
        recorded = reader.signed.get(line["id"])
        if recorded is None:
            return f"signature {line['id']} (line {number}) has no audit record: it was forged"
        for name in SIGNATURE_FIELDS:
            if recorded.get(name) != line[name]:
                return (
                    f"signature {line['id']} (line {number}): its {name} is {line[name]!r}, "
                    f"but its audit records say {recorded.get(name)!r}: it was altered"
                )
        seen.add(line["id"])
    missing = sorted(set(reader.signed) - seen)
    if missing:
        return f"signature {missing[0]} is in the audit trail but not in the export: removed"
    return None


def verify_export_file(path: Path, expect_head: Head | None = None) -> ExportVerdict:
    with path.open("rb") as file:
        return verify_export(file, expect_head)
