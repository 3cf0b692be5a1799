"""Tampering with the audit trail directly in the database is refused, or else caught.

A committed, migrated database of each backend is filled with trial data through the services.
The append-only triggers refuse UPDATE, DELETE (and TRUNCATE); then each test tampers the way a
DBA with superuser rights would (triggers off: `ALTER TABLE ... DISABLE TRIGGER USER` or
`session_replication_role = replica` on PostgreSQL, `DROP TRIGGER` on SQLite) inside a
transaction, checks that `verify_chain` names the damaged record, and rolls back. The committed
version of these attacks, seen by `vigil audit verify`, is in test_verify_cli.py.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import Connection, Engine, Table, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import migrations
from app.audit.chain import link, record_hash
from app.audit.recorder import change_reason
from app.audit.verify import Damage, Head, VerifyResult, verify_chain
from app.db import make_engine
from app.ids import new_id
from app.models import AuditRecord, Study
from tests.factories.trial import make_participant, make_site, make_study

BACKENDS = ["sqlite", "postgresql"]
AUDIT = cast(Table, AuditRecord.__table__)


# --- helpers shared with test_verify_cli.py -------------------------------------------------------


def write_trial_data(engine: Engine) -> None:
    """A study, a site and three participants, and a change with a reason, in separate commits
    as a user would make them: a chain of audit records."""
    with Session(engine) as session:
        session.info.update(actor="coordinator:ann", request_id="req-1", client_address="10.0.0.7")
        study = make_study(session)
        site = make_site(session, study)
        session.commit()
        for n in (1, 2, 3):
            make_participant(session, site, f"01-00{n}")
            session.commit()
        with change_reason(session, "site renamed by the sponsor", "rename"):
            site.name = "Boulder"
        session.commit()


def migrated_trail(fresh_database_url: Any, backend: str) -> str:
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        write_trial_data(engine)
    finally:
        engine.dispose()
    return url


def records(connection: Connection) -> list[Any]:
    return list(connection.execute(select(AUDIT).order_by(AUDIT.c.sequence)))


def verify(bind: Connection | Engine, expect_head: Head | None = None) -> VerifyResult:
    with Session(bind=bind) as session:
        return verify_chain(session, expect_head)


def disable_append_only_triggers(connection: Connection, how: str = "alter table") -> None:
    """What a DBA with superuser rights can do. On PostgreSQL either way is transactional."""
    if connection.dialect.name == "postgresql":
        if how == "alter table":
            connection.exec_driver_sql("ALTER TABLE audit_records DISABLE TRIGGER USER")
        else:
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    else:
        connection.exec_driver_sql("DROP TRIGGER audit_records_no_update")
        connection.exec_driver_sql("DROP TRIGGER audit_records_no_delete")


def forged_row(sequence: int, previous_hash: str, made_up_hash: str | None = None) -> dict:
    """An audit record nobody made: a clinician 'downgrading' an adverse event."""
    record = SimpleNamespace(
        id=new_id(),
        occurred_at=datetime.now(UTC).replace(microsecond=0),
        actor="clinician:mallory",
        action="update",
        entity_type="adverse_events",
        entity_id=str(new_id()),
        before={"serious": True},
        after={"serious": False},
        reason="reassessed",
        request_id="req-forged",
        client_address="10.0.0.66",
    )
    link(record, sequence, previous_hash)
    if made_up_hash is not None:
        record.record_hash = made_up_hash
    return vars(record)


def renumber_from(connection: Connection, sequence: int, by: int) -> None:
    """Shift sequences >= ``sequence`` by ``by`` (through a far range: sequence is unique)."""
    far = 10**9
    connection.execute(
        update(AUDIT).where(AUDIT.c.sequence >= sequence).values(sequence=AUDIT.c.sequence + far)
    )
    connection.execute(
        update(AUDIT).where(AUDIT.c.sequence >= far).values(sequence=AUDIT.c.sequence - far + by)
    )


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def trail(request: pytest.FixtureRequest, fresh_database_url: Any) -> Iterator[Engine]:
    """An engine on a committed database with a chain of audit records, shared by the module:
    every test below rolls its tampering back (the concurrency test only appends)."""
    engine = make_engine(migrated_trail(fresh_database_url, request.param))
    yield engine
    engine.dispose()


@contextmanager
def tampering(engine: Engine, triggers: str | None = "alter table") -> Iterator[Connection]:
    """A transaction on ``engine`` (append-only triggers off unless ``triggers`` is None),
    rolled back after; the chain is whole again then."""
    with engine.connect() as connection:
        transaction = connection.begin()
        if triggers:
            disable_append_only_triggers(connection, triggers)
        try:
            yield connection
        finally:
            transaction.rollback()
    assert verify(engine).intact


# --- the triggers ---------------------------------------------------------------------------------


def test_the_seeded_chain_is_intact(trail: Engine):
    with trail.connect() as connection:
        rows = records(connection)
    result = verify(trail)
    assert len(rows) >= 7
    assert result.intact
    assert result.head == Head(len(rows), rows[-1].record_hash)
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET actor = 'admin:root' WHERE sequence = 2",
        "DELETE FROM audit_records WHERE sequence = 2",
        "TRUNCATE audit_records",
    ],
    ids=["update", "delete", "truncate"],
)
def test_the_triggers_refuse_to_change_or_remove_records(trail: Engine, statement: str):
    if statement.startswith("TRUNCATE") and trail.dialect.name == "sqlite":
        statement = "DELETE FROM audit_records"  # SQLite's TRUNCATE
    before = verify(trail)
    with trail.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(text(statement))
    assert verify(trail) == before


def test_inserting_is_allowed_so_a_forged_record_needs_no_superuser(trail: Engine):
    with tampering(trail, triggers=None) as connection:
        head = records(connection)[-1]
        forged = forged_row(head.sequence + 1, head.record_hash, made_up_hash="ab" * 32)
        connection.execute(insert(AUDIT).values(forged))

        result = verify(connection)

    broken = result.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id) == (head.sequence + 1, str(forged["id"]))
    assert (broken.action, broken.entity_type) == ("update", "adverse_events")
    assert broken.damage is Damage.ALTERED
    assert result.head == Head(head.sequence, head.record_hash)


# --- tampering as a DBA ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [("after", {"status": "enrolled", "sex": "M"}), ("actor", "admin:root")],
)
def test_an_updated_record_is_named(trail: Engine, column: str, value: Any):
    with tampering(trail) as connection:
        target = records(connection)[4]
        connection.execute(update(AUDIT).where(AUDIT.c.id == target.id).values({column: value}))

        result = verify(connection)

    broken = result.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id) == (target.sequence, str(target.id))
    assert (broken.action, broken.entity_type, broken.entity_id) == (
        target.action,
        target.entity_type,
        target.entity_id,
    )
    assert broken.damage is Damage.ALTERED
    assert result.records_checked == target.sequence - 1


@pytest.mark.parametrize("how", ["alter table", "replication role"])
def test_a_deleted_middle_record_is_named(trail: Engine, how: str):
    if how == "replication role" and trail.dialect.name != "postgresql":
        pytest.skip("session_replication_role is PostgreSQL's")
    with tampering(trail, how) as connection:
        rows = records(connection)
        target, after_it = rows[3], rows[4]
        connection.execute(delete(AUDIT).where(AUDIT.c.id == target.id))

        broken = verify(connection).broken

    assert broken is not None
    assert broken.damage is Damage.REMOVED
    assert (broken.sequence, broken.record_id) == (after_it.sequence, str(after_it.id))
    assert f"record #{target.sequence} is missing before it" in broken.detail


def test_a_deleted_record_with_the_later_ones_renumbered_is_caught(trail: Engine):
    with tampering(trail) as connection:
        rows = records(connection)
        connection.execute(delete(AUDIT).where(AUDIT.c.id == rows[3].id))
        renumber_from(connection, rows[4].sequence, by=-1)

        broken = verify(connection).broken

    assert broken is not None
    assert (broken.sequence, broken.record_id) == (rows[3].sequence, str(rows[4].id))


def test_a_forged_record_spliced_into_the_middle_with_its_own_hash_is_named(trail: Engine):
    with tampering(trail) as connection:
        rows = records(connection)
        at = rows[3].sequence
        renumber_from(connection, at, by=1)
        forged = forged_row(at, rows[2].record_hash)  # a correct hash of its own
        connection.execute(insert(AUDIT).values(forged))

        result = verify(connection)

    broken = result.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id) == (at, str(forged["id"]))
    assert broken.damage is Damage.INSERTED
    assert f"#{at + 1}, {rows[3].id}" in broken.detail
    assert result.head == Head(rows[2].sequence, rows[2].record_hash)


def test_a_removed_tail_or_truncation_is_caught_with_the_noted_head(trail: Engine):
    noted = verify(trail).head
    with tampering(trail) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("TRUNCATE audit_records")
        else:
            connection.execute(delete(AUDIT))

        alone = verify(connection)
        against_noted = verify(connection, noted)

    assert alone.intact and alone.records_checked == 0  # an empty chain is a valid chain
    broken = against_noted.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id, broken.damage) == (
        noted.sequence,
        None,
        Damage.REMOVED,
    )


def test_a_chain_rewritten_by_someone_who_knows_the_algorithm_needs_the_noted_head(trail: Engine):
    noted = verify(trail).head
    with tampering(trail) as connection:
        rows = records(connection)
        previous = rows[2].record_hash
        for row in rows[3:]:
            record = SimpleNamespace(**row._asdict())
            if row.sequence == rows[3].sequence:
                record.actor = "admin:root"
            record.previous_hash = previous
            record.record_hash = previous = record_hash(previous, record)  # the stored salts
            connection.execute(
                update(AUDIT)
                .where(AUDIT.c.id == row.id)
                .values(
                    actor=record.actor,
                    record_hash=record.record_hash,
                    previous_hash=record.previous_hash,
                )
            )

        alone = verify(connection)
        against_noted = verify(connection, noted)

    assert alone.intact
    broken = against_noted.broken
    assert broken is not None
    assert (broken.sequence, broken.record_id) == (noted.sequence, str(rows[-1].id))
    assert broken.damage is Damage.REWRITTEN


# --- concurrent writers ---------------------------------------------------------------------------


def test_concurrent_writers_do_not_fork_the_chain(trail: Engine):
    """Writers in separate sessions and threads, all starting together, commit to the module's
    trail: the chain stays one line with contiguous sequences (the advisory lock on
    PostgreSQL, BEGIN IMMEDIATE on SQLite)."""
    threads, commits = 6, 4
    with trail.connect() as connection:
        before = verify(connection).records_checked
        study_id = connection.scalar(select(Study.id))
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Session(trail) as session:
                session.info["actor"] = f"coordinator:writer{n}"
                start.wait(timeout=10)  # before any transaction: on SQLite it locks
                for i in range(commits):
                    study = session.get(Study, study_id)
                    assert study is not None
                    make_site(session, study, code=f"W{n}-{i}")
                    session.commit()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert not failures, failures
    result = verify(trail)
    assert result.intact, result.broken
    assert result.records_checked == before + threads * commits
    with trail.connect() as connection:
        actors = connection.scalars(select(AUDIT.c.actor).where(AUDIT.c.sequence > before)).all()
    assert sorted(set(actors)) == sorted(f"coordinator:writer{n}" for n in range(threads))
