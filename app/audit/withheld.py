"""What the audit trail commits to instead of hashing it in the clear (chain version 2).

Some recorded content must not reach every reader entitled to the trail: treatment arms (for the
blinded), therapist note text, client addresses. A chain-2 record's hash covers each such value
only through a salted commitment, ``sha256(salt "\\n" value)``, so an export can leave a value
out, give its commitment instead, and the chain still verifies; an export entitled to the value
carries it with its salt, and the verifier recomputes the commitment. The salt (128 random bits,
kept beside the record) is what stops a reader from testing guesses ("which arm makes this
hash?") against a commitment. See docs/audit-trail.md, "Withheld fields".
"""

import hashlib
import json
import secrets
from enum import StrEnum
from typing import Any


class Withheld(StrEnum):
    """The kinds of content an audit export may withhold, each revealed to its own readers."""

    ARMS = "arms"
    NOTE_TEXT = "note_text"
    CLIENT_ADDRESS = "client_address"


ARM_FIELDS = frozenset({"arm_code", "kit_number"})  # in any record: they reveal the arm
NOTE_TEXT_FIELDS = {"therapist_notes": frozenset({"text"})}
CLIENT_ADDRESS = "client_address"
_SIDES = ("before", "after")


def committed_paths(
    entity_type: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    client_address: str | None,
) -> dict[str, Withheld]:
    """Each committed value of a record by its path (``after.arm_code``, ``client_address``)."""
    paths: dict[str, Withheld] = {}
    note_fields = NOTE_TEXT_FIELDS.get(entity_type, frozenset())
    for side, values in zip(_SIDES, (before, after), strict=True):
        for key in values or {}:
            if key in ARM_FIELDS:
                paths[f"{side}.{key}"] = Withheld.ARMS
            elif key in note_fields:
                paths[f"{side}.{key}"] = Withheld.NOTE_TEXT
    if client_address is not None:
        paths[CLIENT_ADDRESS] = Withheld.CLIENT_ADDRESS
    return paths


def kind_of(path: str) -> Withheld:
    """What a committed path holds (its path alone says)."""
    if path == CLIENT_ADDRESS:
        return Withheld.CLIENT_ADDRESS
    return Withheld.ARMS if path.partition(".")[2] in ARM_FIELDS else Withheld.NOTE_TEXT


def new_salt() -> str:
    return secrets.token_hex(16)


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def commitment(salt: str, value: Any) -> str:
    """The commitment to ``value`` (a JSON value) under ``salt`` (hex)."""
    return hashlib.sha256(salt.encode() + b"\n" + _json(value)).hexdigest()


def value_at(record: Any, path: str) -> Any:
    """The value at ``path`` of a record with ``before``/``after``/``client_address``."""
    if path == CLIENT_ADDRESS:
        return record.client_address
    side, _, key = path.partition(".")
    return (getattr(record, side) or {})[key]
