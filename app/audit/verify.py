"""Verify the audit hash chain: walk every record in sequence order and name the first broken one.

`chain.first_break` decides *whether* the chain holds; this module streams the records into it
(never the whole table in memory), says *what* the damage looks like (an altered, removed or
inserted record, a sequence gap) and checks an externally noted head, since a chain whose newest
records were removed is indistinguishable from a shorter chain.
"""

import hashlib
import hmac
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS_HASH, first_break, record_hash
from app.errors import NotFound
from app.models import AuditRecord

VERIFY_BATCH_SIZE = 1000  # records fetched per round trip while streaming the chain


class Damage(StrEnum):
    ALTERED = "altered content"
    REMOVED = "removed record"
    INSERTED = "inserted record"
    SEQUENCE_GAP = "sequence gap"
    SEQUENCE_REPEAT = "sequence repeat"
    REWRITTEN = "rewritten chain"


# The two ways a head is written down, told apart by a prefix in the value: the record hash that
# `vigil audit verify` prints, and the digest of it keyed by the server secret that the API shows
# (app/audit_api/verify_endpoints.py). Neither check accepts the other's.
RECORD_HASH = "sha256"
KEYED_DIGEST = "hmac-sha256"
API_DIGEST_GIVEN = (
    "this is the API's keyed digest (head.keyed_digest of GET /api/v1/audit-records/verify), "
    "not a record hash; pass the head printed by `vigil audit verify` (SEQ:sha256:HASH)"
)


def parse_noted_head(text: str) -> tuple[int, str | None, str]:
    """``SEQ:[KIND:]HEX`` (``#`` before SEQ allowed): the sequence, the kind named (``sha256``,
    ``hmac-sha256`` or None when bare) and the 64 hex digits."""
    sequence, sep, rest = text.strip().removeprefix("#").partition(":")
    kind, _, digest = rest.strip().rpartition(":")
    digest = digest.strip().lower()
    if not sep or not sequence.isdigit() or len(digest) != 64:
        raise ValueError(
            f"expected SEQ:sha256:HASH (a sequence number, a SHA-256 in hex): {text!r}"
        )
    if kind.strip().lower() not in {"", RECORD_HASH, KEYED_DIGEST}:
        raise ValueError(f"unknown kind {kind!r} in {text!r}; expected sha256 or hmac-sha256")
    try:
        bytes.fromhex(digest)
    except ValueError:
        raise ValueError(f"the hash in {text!r} is not hexadecimal") from None
    return int(sequence), kind.strip().lower() or None, digest


@dataclass(frozen=True)
class Head:
    """A chain's newest record, as noted to check later that it is still there, unchanged."""

    sequence: int
    record_hash: str

    @classmethod
    def parse(cls, text: str) -> "Head":
        """``SEQ:sha256:HASH`` as printed by a verify run (``SEQ:HASH`` too); the API's keyed
        digest (``hmac-sha256:``) is refused, saying so."""
        sequence, kind, digest = parse_noted_head(text)
        if kind == KEYED_DIGEST:
            raise ValueError(API_DIGEST_GIVEN)
        head = cls(sequence, digest)
        if head.sequence == 0 and digest != GENESIS_HASH:
            raise ValueError("sequence 0 is the empty chain; its hash is 64 zeros")
        return head

    def __str__(self) -> str:
        return f"#{self.sequence} {RECORD_HASH}:{self.record_hash}"


EMPTY_HEAD = Head(0, GENESIS_HASH)


def keyed_digest(head: Head, secret_key: str) -> str:
    """The head as the API shows it, ``hmac-sha256:HEX``: a digest keyed by the server secret,
    never the record hash (which would let a blinded reader test "which arm makes this hash?"
    against a randomisation record)."""
    message = f"audit-head:{head.sequence}:{head.record_hash}".encode()
    return f"{KEYED_DIGEST}:{hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()}"


@dataclass(frozen=True)
class BrokenRecord:
    """Where the chain breaks and what the damage looks like. A record removed from the tail
    is gone: only its sequence is known (``record_id`` is None)."""

    sequence: int
    record_id: str | None
    action: str | None
    entity_type: str | None
    entity_id: str | None
    damage: Damage
    detail: str

    @property
    def message(self) -> str:
        named = f"#{self.sequence}"
        if self.record_id is not None:
            named += f" ({self.record_id}: {self.action} {self.entity_type} {self.entity_id})"
        return f"audit record {named}: {self.damage}: {self.detail}"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class VerifyResult:
    """``head`` is the newest record that verified: the chain's head when it is intact, else
    the last good record before the damage (``EMPTY_HEAD`` if there is none)."""

    head: Head
    broken: BrokenRecord | None
    expected_head: Head | None = None
    found_at_expected: Head | None = None  # the record at the noted sequence, if it differs

    @property
    def intact(self) -> bool:
        return self.broken is None

    @property
    def records_checked(self) -> int:
        """Records that verified: a good chain numbers its records 1, 2, 3, ... from the start."""
        return self.head.sequence


def verify_chain(session: Session, expect_head: Head | None = None) -> VerifyResult:
    """Walk the audit trail in ``session`` in sequence order, streaming it in batches."""
    stmt = (
        select(AuditRecord.__table__)
        .order_by(AuditRecord.sequence)
        .execution_options(yield_per=VERIFY_BATCH_SIZE)
    )
    rows = session.execute(stmt)
    try:
        return verify_records(rows, expect_head)
    finally:
        rows.close()


def verify_database(url: str, expect_head: Head | None = None) -> VerifyResult:
    """Verify the chain of the database at ``url`` in a read-only snapshot that takes no lock a
    writer waits for (on SQLite the app's engine would take the write lock at BEGIN)."""
    engine = _read_only_engine(url)
    try:
        with Session(engine) as session:
            return verify_chain(session, expect_head)
    finally:
        engine.dispose()


def verify_records(records: Iterable[Any], expect_head: Head | None = None) -> VerifyResult:
    """The verdict on ``records`` (in sequence order), by the rules of `chain.first_break`."""
    walk = _Walk(records, expect_head)
    if first_break(walk) is not None:
        *chained, refused = walk.window
        blamed, damage, detail = _diagnose(chained, refused)
        if chained and blamed is chained[-1]:
            chained.pop()
        return walk.result(chained, _named(blamed, damage, detail))
    chained = list(walk.window)
    if walk.rewritten is not None and expect_head is not None:
        return walk.result(chained[:-1], _rewritten(walk.rewritten, expect_head))
    head = _head(chained[-1]) if chained else EMPTY_HEAD
    if expect_head is not None and expect_head.sequence > head.sequence:
        return walk.result(chained, _tail_removed(head, expect_head))
    return walk.result(chained, None)


class _Walk:
    """Feeds records to `first_break`, keeping the last three for a diagnosis. At the expected
    head's sequence it checks the record still has the noted hash, and stops there if not: from
    there on the chain is not the one that was noted."""

    def __init__(self, records: Iterable[Any], expect_head: Head | None) -> None:
        self.records = records
        self.expect_head = expect_head
        self.window: deque[Any] = deque(maxlen=3)
        self.rewritten: Any = None

    def __iter__(self) -> Iterator[Any]:
        expected = self.expect_head
        for record in self.records:
            self.window.append(record)
            yield record
            # first_break asks for the next record only once this one has chained
            if (
                expected is not None
                and record.sequence == expected.sequence
                and record.record_hash != expected.record_hash
            ):
                self.rewritten = record
                return

    def result(self, chained: list[Any], broken: BrokenRecord | None) -> VerifyResult:
        """``chained``: the window's records that verified, up to the damage if any."""
        head = _head(chained[-1]) if chained else EMPTY_HEAD
        found = _head(self.rewritten) if self.rewritten is not None else None
        return VerifyResult(head, broken, self.expect_head, found)


def _head(record: Any) -> Head:
    return Head(record.sequence, record.record_hash)


def _named(record: Any, damage: Damage, detail: str) -> BrokenRecord:
    return BrokenRecord(
        sequence=record.sequence,
        record_id=str(record.id),
        action=record.action,
        entity_type=record.entity_type,
        entity_id=record.entity_id,
        damage=damage,
        detail=detail,
    )


def _diagnose(chained: list[Any], record: Any) -> tuple[Any, Damage, str]:
    """What the record `first_break` refused says about the damage, and which record to blame:
    it, or the one before it when that one was spliced in. ``chained`` ends with the (up to
    two) records before it, which chained."""
    previous = chained[-1] if chained else None
    earlier = chained[-2] if len(chained) > 1 else None
    previous_hash = previous.record_hash if previous is not None else GENESIS_HASH
    expected = previous.sequence + 1 if previous is not None else 1
    last = f"#{expected - 1}"

    if record.sequence > expected:
        if record.previous_hash == previous_hash:
            return (
                record,
                Damage.SEQUENCE_GAP,
                f"its sequence jumps from {last} to #{record.sequence}, yet it chains to "
                f"{last}: its sequence was changed, or it was forged",
            )
        gone = f"record #{expected} is"
        if record.sequence - 1 > expected:
            gone = f"records #{expected} to #{record.sequence - 1} are"
        return record, Damage.REMOVED, f"{gone} missing before it: the chain has a gap there"
    if record.sequence < expected:
        return (
            record,
            Damage.SEQUENCE_REPEAT,
            f"sequence #{record.sequence} where #{expected} was due: the sequence repeats or "
            "goes back",
        )
    if record.previous_hash == previous_hash:
        return (
            record,
            Damage.ALTERED,
            "its content no longer matches its hash: it was changed after it was written "
            "(or written outside the chain with a made-up hash)",
        )
    before_previous = earlier.record_hash if earlier is not None else GENESIS_HASH
    if previous is not None and record.previous_hash == before_previous:
        return (
            previous,
            Damage.INSERTED,
            f"the record after it (#{record.sequence}, {record.id}) chains to the one before "
            f"it (#{previous.sequence - 1}): this record was spliced in between",
        )
    if record_hash(record.previous_hash, record) == record.record_hash:
        return (
            record,
            Damage.INSERTED,
            f"its own hash is consistent but it does not chain to {last}: it was inserted "
            f"with a recomputed hash, or {last} was rewritten",
        )
    return (
        record,
        Damage.ALTERED,
        f"neither its content nor its link to {last} matches: it was altered or replaced "
        "(a record removed before it, the later ones renumbered, looks like this)",
    )


def _rewritten(record: Any, expected: Head) -> BrokenRecord:
    # Hashes are left out of the details: the API shows them, and shows no record hash.
    return _named(
        record,
        Damage.REWRITTEN,
        f"its hash is not the one noted for #{expected.sequence}: the chain up to here was "
        "rewritten with recomputed hashes",
    )


def _tail_removed(head: Head, expected: Head) -> BrokenRecord:
    gone = f"#{expected.sequence}"
    if expected.sequence > head.sequence + 1:
        gone = f"#{head.sequence + 1} to {gone}"
    return BrokenRecord(
        sequence=expected.sequence,
        record_id=None,
        action=None,
        entity_type=None,
        entity_id=None,
        damage=Damage.REMOVED,
        detail=f"the chain ends at #{head.sequence}, but #{expected.sequence} was noted: "
        f"{gone} removed from the end of the chain",
    )


def _read_only_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url,
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True},
        )
    if not parsed.database or parsed.database == ":memory:" or not Path(parsed.database).exists():
        raise NotFound(f"no SQLite database file at {parsed.database or '(memory)'}")
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _query_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _deferred(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")  # a read snapshot; takes no write lock

    return engine
