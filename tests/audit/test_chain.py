"""The hash chain and the verdict on it, without a database: records are plain objects here.

Each kind of damage a verify run names (altered, removed, inserted, gap, repeat, rewritten) is
made by hand on a small chain, the way tests/audit/test_tamper.py then makes it in a database.
"""

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.audit.chain import GENESIS_HASH, canonical, first_break, link, record_hash
from app.audit.verify import EMPTY_HEAD, Damage, Head, verify_records

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@dataclasses.dataclass
class Record:
    id: uuid.UUID
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict | None
    after: dict | None
    reason: str | None = None
    request_id: str | None = "req-1"
    client_address: str | None = "10.0.0.7"
    sequence: int = 0
    previous_hash: str = ""
    record_hash: str = ""
    chain_version: int | None = None
    salts: dict | None = None


def record(n: int, **changes: Any) -> Record:
    fields: dict[str, Any] = {
        "id": uuid.UUID(int=n),
        "occurred_at": T0 + timedelta(minutes=n),
        "actor": "coordinator:ann",
        "action": "create" if n % 2 else "update",
        "entity_type": "participants",
        "entity_id": f"p-{n}",
        "before": None if n % 2 else {"status": "screening"},
        "after": {"status": "enrolled", "n": n},
    }
    return Record(**(fields | changes))


def chain(count: int) -> list[Record]:
    records, previous = [], GENESIS_HASH
    for n in range(1, count + 1):
        r = record(n)
        previous = link(r, n, previous)
        records.append(r)
    return records


def relink(records: list[Record], start: int = 0) -> list[Record]:
    """What someone who knows the algorithm does: recompute every hash from ``start`` on."""
    previous = records[start - 1].record_hash if start else GENESIS_HASH
    for r in records[start:]:
        previous = link(r, r.sequence, previous)
    return records


def forged(n: int, sequence: int, previous_hash: str, own_hash: str | None = None) -> Record:
    r = record(n, actor="clinician:mallory", entity_type="adverse_events", entity_id="ae-9")
    link(r, sequence, previous_hash)
    if own_hash is not None:
        r.record_hash = own_hash
    return r


# --- the canonical form and the chain -------------------------------------------------------------


def test_version_1_canonical_form_is_sorted_compact_json_of_the_content_and_frozen():
    r = record(1, sequence=1, chain_version=1)
    assert canonical(r) == (
        b'{"action":"create","actor":"coordinator:ann","after":{"n":1,"status":"enrolled"},'
        b'"before":null,"client_address":"10.0.0.7","entity_id":"p-1","entity_type":"participants",'
        b'"id":"00000000-0000-0000-0000-000000000001","occurred_at":"2026-11-25T09:01:00+00:00",'
        b'"reason":null,"request_id":"req-1","sequence":1}'
    )
    # a record written before the cut-over has no version of its own: it is version 1
    assert canonical(dataclasses.replace(r, chain_version=None)) == canonical(r)


def test_version_2_hashes_withheld_values_only_through_salted_commitments():
    r = record(1, entity_type="participants", after={"status": "enrolled", "arm_code": "MDMA"})
    link(r, 1, GENESIS_HASH)
    assert r.chain_version == 2
    assert set(r.salts) == {"after.arm_code", "client_address"}
    content = json.loads(canonical(r))
    assert content["after"] == {"status": "enrolled"}
    assert content["client_address"] is None
    assert content["chain_version"] == 2
    salt = r.salts["after.arm_code"]
    assert (
        content["commitments"]["after.arm_code"]
        == hashlib.sha256(salt.encode() + b'\n"MDMA"').hexdigest()
    )
    assert b"MDMA" not in canonical(r) and b"10.0.0.7" not in canonical(r)
    assert r.previous_hash == GENESIS_HASH
    assert r.record_hash == record_hash(GENESIS_HASH, r)
    # the other arm, or a guessed salt, gives another hash
    assert (
        record_hash(GENESIS_HASH, dataclasses.replace(r, after={**r.after, "arm_code": "PBO"}))
        != r.record_hash
    )
    assert (
        record_hash(
            GENESIS_HASH, dataclasses.replace(r, salts={**r.salts, "after.arm_code": "00" * 16})
        )
        != r.record_hash
    )


def test_salts_are_fresh_per_record():
    a, b = record(1), record(1)
    link(a, 1, GENESIS_HASH)
    link(b, 1, GENESIS_HASH)
    assert a.salts["client_address"] != b.salts["client_address"]
    assert a.record_hash != b.record_hash


def test_a_version_1_record_after_the_cut_over_breaks_the_chain():
    records, previous = [], GENESIS_HASH
    for n in range(1, 5):
        r = record(n)
        if n <= 2:  # written before the cut-over, in the old form
            r.sequence, r.previous_hash, r.chain_version = n, previous, 1
            r.record_hash = record_hash(previous, r)
            previous = r.record_hash
        else:
            previous = link(r, n, previous)
        records.append(r)
    assert first_break(records) is None
    downgraded = records[3]
    downgraded.chain_version, downgraded.salts = 1, None
    downgraded.record_hash = record_hash(downgraded.previous_hash, downgraded)
    broken = first_break(records)
    assert broken is not None and broken.sequence == 4
    assert "chain version 1 after version 2" in broken.problem


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "admin:root"),
        ("after", {"status": "enrolled", "n": 2}),
        ("before", {}),
        ("occurred_at", T0),
        ("reason", "typo"),
        ("sequence", 7),
        ("client_address", None),
    ],
)
def test_every_canonical_field_is_covered_by_the_hash(field, value):
    r = chain(1)[0]
    setattr(r, field, value)
    assert record_hash(GENESIS_HASH, r) != r.record_hash


def test_a_hash_covers_the_previous_hash():
    r = chain(1)[0]
    assert record_hash("1" * 64, r) != r.record_hash


def test_an_intact_chain_verifies_and_reports_its_head():
    records = chain(5)
    assert first_break(records) is None

    result = verify_records(records)

    assert result.intact
    assert result.records_checked == 5
    assert result.head == Head(5, records[-1].record_hash)
    assert str(result.head) == f"#5 sha256:{records[-1].record_hash}"


def test_an_empty_chain_is_intact_with_the_genesis_head():
    result = verify_records([])
    assert result.intact
    assert result.head == EMPTY_HEAD == Head(0, "0" * 64)
    assert result.records_checked == 0


def test_records_are_streamed_and_the_walk_stops_at_the_break():
    records = chain(10)
    records[3].after = {"status": "withdrawn"}
    pulled: list[int] = []

    def stream() -> Iterator[Record]:
        for r in records:
            pulled.append(r.sequence)
            yield r

    result = verify_records(stream())

    assert result.broken is not None and result.broken.sequence == 4
    assert pulled == [1, 2, 3, 4]


# --- each kind of damage, named -------------------------------------------------------------------


def test_altered_content_names_the_record():
    records = chain(5)
    records[2].after = {"status": "enrolled", "n": 300}

    result = verify_records(records)

    broken = result.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id) == (3, str(records[2].id))
    assert broken.damage is Damage.ALTERED
    assert (broken.action, broken.entity_type, broken.entity_id) == (
        "create",
        "participants",
        "p-3",
    )
    assert broken.message.startswith(
        f"audit record #3 ({records[2].id}: create participants p-3): altered content: "
    )
    assert result.head == Head(2, records[1].record_hash)
    assert result.records_checked == 2


def test_a_removed_record_leaves_a_gap_before_the_next():
    records = chain(5)
    del records[2]

    broken = verify_records(records).broken

    assert broken is not None
    assert (broken.sequence, broken.record_id) == (4, str(records[2].id))
    assert broken.damage is Damage.REMOVED
    assert "record #3 is missing before it" in broken.detail


def test_several_removed_records_and_the_first_one():
    records = chain(6)
    broken = verify_records(records[:1] + records[4:]).broken
    assert broken is not None and broken.damage is Damage.REMOVED
    assert "records #2 to #4 are missing" in broken.detail

    broken = verify_records(records[1:]).broken
    assert broken is not None and broken.damage is Damage.REMOVED
    assert (broken.sequence, broken.detail.split(":")[0]) == (2, "record #1 is missing before it")


def test_a_removed_record_with_the_later_ones_renumbered():
    records = chain(5)
    del records[2]
    for r in records[2:]:
        r.sequence -= 1

    broken = verify_records(records).broken

    assert broken is not None
    assert (broken.sequence, broken.record_id) == (3, str(uuid.UUID(int=4)))
    assert broken.damage is Damage.ALTERED
    assert "removed before it" in broken.detail


def test_a_forged_record_with_a_plausible_sequence_and_a_made_up_hash():
    records = chain(4)
    records.append(forged(99, 5, records[-1].record_hash, own_hash="ab" * 32))

    broken = verify_records(records).broken

    assert broken is not None
    assert (broken.sequence, broken.record_id) == (5, str(uuid.UUID(int=99)))
    assert broken.damage is Damage.ALTERED
    assert broken.entity_type == "adverse_events"


def test_a_forged_record_spliced_in_with_its_own_hash_recomputed_is_named():
    records = chain(5)
    for r in records[2:]:
        r.sequence += 1  # make room at #3, as a DBA renumbering the rows would
    records.insert(2, forged(99, 3, records[1].record_hash))

    result = verify_records(records)

    broken = result.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id) == (3, str(uuid.UUID(int=99)))
    assert broken.damage is Damage.INSERTED
    assert "spliced in" in broken.detail
    assert result.head == Head(2, records[1].record_hash)


def test_a_forged_first_record_spliced_in():
    records = chain(3)
    for r in records:
        r.sequence += 1
    records.insert(0, forged(99, 1, GENESIS_HASH))

    broken = verify_records(records).broken

    assert broken is not None
    assert (broken.sequence, broken.damage) == (1, Damage.INSERTED)
    assert broken.record_id == str(uuid.UUID(int=99))


def test_a_self_consistent_record_that_does_not_chain():
    records = chain(4)
    records.append(forged(99, 5, "e" * 64))

    broken = verify_records(records).broken

    assert broken is not None
    assert (broken.sequence, broken.damage) == (5, Damage.INSERTED)
    assert "does not chain to #4" in broken.detail


def test_a_sequence_gap_on_a_record_that_still_chains():
    records = chain(4)
    records.append(forged(99, 9, records[-1].record_hash))

    broken = verify_records(records).broken

    assert broken is not None
    assert (broken.sequence, broken.damage) == (9, Damage.SEQUENCE_GAP)


def test_a_repeated_sequence():
    records = chain(4)
    records.insert(3, forged(99, 3, records[1].record_hash))

    broken = verify_records(records).broken

    assert broken is not None
    assert (broken.sequence, broken.damage) == (3, Damage.SEQUENCE_REPEAT)
    assert broken.record_id == str(records[3].id)


# --- an externally noted head ---------------------------------------------------------------------


def test_the_noted_head_still_in_the_chain():
    records = chain(6)
    noted = Head(4, records[3].record_hash)
    result = verify_records(records, noted)
    assert result.intact
    assert result.head == Head(6, records[5].record_hash)
    assert verify_records(records, EMPTY_HEAD).intact


def test_a_removed_tail_is_caught_only_with_the_noted_head():
    records = chain(6)
    noted = Head(6, records[5].record_hash)

    assert verify_records(records[:4]).intact  # a shorter chain verifies on its own

    result = verify_records(records[:4], noted)
    broken = result.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id, broken.damage) == (6, None, Damage.REMOVED)
    assert "the chain ends at #4" in broken.detail
    assert "#5 to #6 removed" in broken.detail
    assert result.head == Head(4, records[3].record_hash)
    assert broken.message.startswith("audit record #6: removed record: ")


def test_a_rewritten_chain_is_caught_only_with_the_noted_head():
    records = chain(6)
    noted = Head(5, records[4].record_hash)
    records[2].actor = "admin:root"
    relink(records, start=2)

    assert verify_records(records).intact  # the algorithm is no secret

    result = verify_records(records, noted)
    broken = result.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id) == (5, str(records[4].id))
    assert broken.damage is Damage.REWRITTEN
    assert result.head == Head(4, records[3].record_hash)


@pytest.mark.parametrize(
    ("text", "head"),
    [
        (f"12:{'a' * 64}", Head(12, "a" * 64)),
        (f"#12:{'A' * 64}", Head(12, "a" * 64)),
        (f" 0:{'0' * 64} ", EMPTY_HEAD),
    ],
)
def test_head_parse(text, head):
    assert Head.parse(text) == head


@pytest.mark.parametrize(
    "text",
    ["", "12", f"x:{'a' * 64}", "12:abc", f"12:{'g' * 64}", f"-1:{'a' * 64}", f"0:{'a' * 64}"],
)
def test_head_parse_refuses(text):
    with pytest.raises(ValueError):
        Head.parse(text)
