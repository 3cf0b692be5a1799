"""`vigil audit verify` and `GET /api/v1/audit-records/verify` on committed databases.

Each tampering test commits its damage the way a DBA with superuser rights would (the append-only
triggers disabled on PostgreSQL, dropped on SQLite), runs the command as an operator would (it
must name the damaged record and exit 1) and asks the route, then puts the record back: the tests
of a backend share one database (a PostgreSQL database costs ~1 s to create and drop), and the
fixture checks the chain verifies again after each test.
"""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Executable, delete, func, insert, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from app.audit.verify import Head, verify_database
from app.audit_api.verify_endpoints import head_digest
from app.audit_api.verify_endpoints import router as verify_router
from app.auth import tokens
from app.cli import cli
from app.config import get_settings
from app.db import dispose_engines, make_engine
from app.errors import install_error_handlers
from app.models import User
from tests.audit.test_tamper import AUDIT, forged_row, migrated_trail, renumber_from

BACKENDS = ["sqlite", "postgresql"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", "verify", *args])


def head_of(url: str) -> tuple[int, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(AUDIT.c.sequence, AUDIT.c.record_hash).order_by(AUDIT.c.sequence.desc())
            ).first()
    finally:
        engine.dispose()
    assert row is not None
    return row.sequence, row.record_hash


def row_at(url: str, sequence: int) -> Any:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(AUDIT).where(AUDIT.c.sequence == sequence)).one()
    finally:
        engine.dispose()


@contextmanager
def as_dba(url: str) -> Iterator[Connection]:
    """A committed transaction with the append-only triggers out of the way: disabled and
    enabled again on PostgreSQL; dropped and created again on SQLite (which cannot disable a
    trigger), with the DDL the database itself keeps."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("ALTER TABLE audit_records DISABLE TRIGGER USER")
                yield connection
                connection.exec_driver_sql("ALTER TABLE audit_records ENABLE TRIGGER USER")
                return
            triggers = connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name = 'audit_records'"
            ).all()
            assert len(triggers) == 2, triggers
            for name, _ in triggers:
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
            yield connection
            for _, ddl in triggers:
                connection.exec_driver_sql(ddl)
    finally:
        engine.dispose()


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Point the CLI and the app (VIGIL_DATABASE_URL) at a database of the test's choosing."""

    def use(url: str) -> str:
        monkeypatch.setenv("VIGIL_DATABASE_URL", url)
        get_settings.cache_clear()
        dispose_engines()
        return url

    yield use
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture(scope="module", params=BACKENDS)
def shared_trail(request: pytest.FixtureRequest, fresh_database_url: Any) -> str:
    return migrated_trail(fresh_database_url, request.param)


@pytest.fixture
def trail_url(shared_trail: str, use_database: Callable[[str], str]) -> Iterator[str]:
    """VIGIL_DATABASE_URL: the module's committed trail, intact before and after each test."""
    url = use_database(shared_trail)
    assert verify_database(url).intact
    yield url
    assert verify_database(url).intact, "a test left the shared trail damaged"


VERIFY = "/api/v1/audit-records/verify"


@pytest.fixture
def verify_client() -> Iterator[TestClient]:
    """The verify route on an app of its own (app.main does not include it yet), answering
    from VIGIL_DATABASE_URL through the request unit of work, as in the app."""
    application = FastAPI()
    install_error_handlers(application)
    application.include_router(verify_router, prefix="/api/v1")
    with TestClient(application) as client:
        yield client


def bearer(url: str, role: str | None) -> dict[str, str]:
    """The Authorization header of a new user of ``role`` (none for None)."""
    if role is None:
        return {}
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            session.info["actor"] = "admin:setup"
            username = f"{role}-{uuid.uuid4().hex[:8]}"
            user = User(username=username, display_name=role.title(), role=role, password_hash="-")
            session.add(user)
            session.flush()
            _, token = tokens.issue(session, user, tokens.TokenKind.API)
            session.commit()
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {token}"}


# --- the command ----------------------------------------------------------------------------------


def test_an_intact_trail_prints_its_head_and_exits_0(trail_url: str):
    sequence, digest = head_of(trail_url)

    result = run()

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"audit trail intact: {sequence} records, head #{sequence} sha256:{digest}\n"
    )
    assert run("--expect-head", f"{sequence}:sha256:{digest}").exit_code == 0
    assert run("--expect-head", f"{sequence}:{digest}").exit_code == 0  # bare, as before
    earlier = row_at(trail_url, sequence - 2)
    assert run("--expect-head", f"#{earlier.sequence}:{earlier.record_hash}").exit_code == 0
    assert head_of(trail_url) == (sequence, digest)  # read-only


ALTERED = "altered content: its content no longer matches its hash"


def executing(statement: Executable) -> Callable[[Connection], object]:
    return lambda connection: connection.execute(statement)


@pytest.mark.parametrize("damage", ["update", "delete", "insert", "splice"])
def test_a_tampered_trail_names_the_record_and_exits_1(
    trail_url: str, verify_client: TestClient, damage: str
):
    headers = bearer(trail_url, "sponsor")
    sequence, digest = head_of(trail_url)
    second, target, after_it = (row_at(trail_url, n) for n in (2, 3, 4))
    at_target = AUDIT.c.id == target.id
    forged = forged_row(sequence + 1, digest, made_up_hash="cd" * 32)
    spliced = forged_row(3, second.record_hash)  # with its own hash right

    def splice(connection: Connection) -> None:
        renumber_from(connection, 3, by=1)
        connection.execute(insert(AUDIT).values(spliced))

    def unsplice(connection: Connection) -> None:
        connection.execute(delete(AUDIT).where(AUDIT.c.id == spliced["id"]))
        renumber_from(connection, 4, by=-1)

    tamper, undo, named, kind, good = {
        "update": (
            executing(update(AUDIT).where(at_target).values(after={"name": "forged"})),
            executing(update(AUDIT).where(at_target).values(after=target.after)),
            target,
            ALTERED,
            second,
        ),
        "delete": (
            executing(delete(AUDIT).where(at_target)),
            executing(insert(AUDIT).values(target._asdict())),
            after_it,
            "removed record: record #3 is missing before it",
            second,
        ),
        "insert": (
            executing(insert(AUDIT).values(forged)),
            executing(delete(AUDIT).where(AUDIT.c.id == forged["id"])),
            SimpleNamespace(**forged),
            ALTERED,
            row_at(trail_url, sequence),
        ),
        "splice": (
            splice,
            unsplice,
            SimpleNamespace(**spliced),
            f"inserted record: the record after it (#4, {target.id}) chains to the one "
            "before it (#2): this record was spliced in between",
            second,
        ),
    }[damage]

    with as_dba(trail_url) as connection:
        tamper(connection)
    try:
        result = run()
        response = verify_client.get(VERIFY, headers=headers)
    finally:
        with as_dba(trail_url) as connection:
            undo(connection)

    message = (
        f"audit record #{named.sequence} ({named.id}: {named.action} {named.entity_type} "
        f"{named.entity_id}): {kind}"
    )
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(f"audit trail BROKEN: {message}")
    assert result.stdout.splitlines()[1] == (
        f"{good.sequence} records verified before it, up to #{good.sequence} "
        f"sha256:{good.record_hash}"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["intact"], body["records_checked"], body["head"]["keyed_digest"]) == (
        False,
        good.sequence,
        head_digest(Head(good.sequence, good.record_hash)),
    )
    broken = body["broken"]
    assert broken["message"].startswith(message)
    assert (broken["sequence"], broken["record_id"]) == (named.sequence, str(named.id))


def test_a_removed_end_of_the_trail_needs_the_noted_head(trail_url: str):
    sequence, digest = head_of(trail_url)
    tail = [row_at(trail_url, sequence - 1), row_at(trail_url, sequence)]
    with as_dba(trail_url) as connection:
        connection.execute(delete(AUDIT).where(AUDIT.c.sequence >= sequence - 1))
    try:
        alone = run()
        against_noted = run("--expect-head", f"{sequence}:{digest}")
    finally:
        with as_dba(trail_url) as connection:
            connection.execute(insert(AUDIT), [row._asdict() for row in tail])

    assert alone.exit_code == 0  # a shorter chain is a valid chain
    assert alone.stdout.startswith(f"audit trail intact: {sequence - 2} records, ")
    assert against_noted.exit_code == 1
    assert against_noted.stdout.startswith(
        f"audit trail BROKEN: audit record #{sequence}: removed record: the chain ends at "
        f"#{sequence - 2}, but #{sequence} was noted: #{sequence - 1} to #{sequence} "
        "removed"
    )


def test_verify_takes_no_write_lock_on_sqlite(fresh_database_url: Any, use_database):
    url = use_database(migrated_trail(fresh_database_url, "sqlite"))
    writer = make_engine(url)
    try:
        with writer.begin() as connection:  # BEGIN IMMEDIATE: holds SQLite's write lock
            connection.execute(select(func.count()).select_from(AUDIT))
            result = run()
    finally:
        writer.dispose()
    assert result.exit_code == 0, result.output


def test_a_malformed_expected_head_is_a_usage_error():
    result = run("--expect-head", "12:not-a-hash")
    assert result.exit_code == 2
    assert "SEQ:sha256:HASH" in result.output


def test_a_missing_sqlite_file_is_an_error_not_an_empty_trail(tmp_path, use_database):
    missing = tmp_path / "nothing.db"
    use_database(f"sqlite:///{missing}")

    result = run()

    assert result.exit_code == 1
    assert f"no SQLite database file at {missing}" in result.stderr
    assert not missing.exists()


# --- the route ------------------------------------------------------------------------------------


def test_the_route_reports_the_chain_for_audit_readers(trail_url: str, verify_client):
    headers = bearer(trail_url, "sponsor")
    sequence, digest = head_of(trail_url)

    response = verify_client.get(VERIFY, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "intact": True,
        "records_checked": sequence,
        "head": {"sequence": sequence, "keyed_digest": head_digest(Head(sequence, digest))},
        "expected_head": None,
        "broken": None,
    }
    assert digest not in response.text  # raw hashes would let a blinded reader test arms


def test_the_route_checks_a_noted_head_by_its_keyed_digest(trail_url: str, verify_client):
    headers = bearer(trail_url, "sponsor")
    noted = verify_client.get(VERIFY, headers=headers).json()["head"]
    expect = f"{noted['sequence']}:{noted['keyed_digest']}"
    still = verify_client.get(VERIFY, params={"expect_head": expect}, headers=headers).json()
    assert still["intact"] is True
    sequence, _ = head_of(trail_url)
    tail = row_at(trail_url, sequence)
    with as_dba(trail_url) as connection:
        connection.execute(delete(AUDIT).where(AUDIT.c.sequence == sequence))
    try:
        gone = verify_client.get(VERIFY, params={"expect_head": expect}, headers=headers).json()
        assert gone["intact"] is False
        forged = f"{noted['sequence'] - 1}:{'0' * 64}"
        wrong = verify_client.get(VERIFY, params={"expect_head": forged}, headers=headers)
        assert wrong.json()["intact"] is False
    finally:
        with as_dba(trail_url) as connection:
            connection.execute(AUDIT.insert().values(**tail._mapping))


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("coordinator", 403)])
def test_the_route_refuses_others(trail_url: str, verify_client, role: str | None, status: int):
    response = verify_client.get(VERIFY, headers=bearer(trail_url, role))
    assert response.status_code == status, response.text


def test_the_route_refuses_a_malformed_expected_head(trail_url: str, verify_client):
    headers = bearer(trail_url, "sponsor")
    response = verify_client.get(VERIFY, params={"expect_head": "1:xyz"}, headers=headers)
    assert response.status_code == 422


# --- the two heads: the command's record hash, the route's keyed digest ---------------------------


def said(result: Result) -> str:
    """The command's output as one line (usage errors come wrapped in a box)."""
    return " ".join(result.output.replace("│", " ").split())


def test_the_two_heads_are_told_apart_by_their_names(trail_url: str, verify_client):
    headers = bearer(trail_url, "sponsor")
    api_head = verify_client.get(VERIFY, headers=headers).json()["head"]
    sequence, record_hash = head_of(trail_url)

    assert api_head["keyed_digest"].startswith("hmac-sha256:")
    assert run().stdout.endswith(f" head #{sequence} sha256:{record_hash}\n")


@pytest.mark.parametrize("as_shown", [True, False], ids=["prefixed", "bare"])
def test_the_command_given_the_routes_digest_says_so_not_rewritten(
    trail_url: str, verify_client, as_shown: bool
):
    headers = bearer(trail_url, "sponsor")
    api_head = verify_client.get(VERIFY, headers=headers).json()["head"]
    digest = api_head["keyed_digest"] if as_shown else api_head["keyed_digest"].split(":")[1]

    result = run("--expect-head", f"{api_head['sequence']}:{digest}")

    assert result.exit_code == 2, result.output
    assert "this is the API's keyed digest" in said(result)
    assert "pass the head printed by `vigil audit verify`" in said(result)
    assert "rewritten" not in result.output


def test_the_route_given_the_commands_record_hash_says_so(trail_url: str, verify_client):
    headers = bearer(trail_url, "sponsor")
    sequence, record_hash = head_of(trail_url)

    response = verify_client.get(
        VERIFY, params={"expect_head": f"{sequence}:sha256:{record_hash}"}, headers=headers
    )

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "this is a record hash, as `vigil audit verify` prints it" in detail
    assert "head.keyed_digest" in detail


def test_the_route_names_no_record_hash_when_the_noted_head_differs(trail_url, verify_client):
    headers = bearer(trail_url, "sponsor")
    sequence, _ = head_of(trail_url)
    earlier = row_at(trail_url, sequence - 1)

    response = verify_client.get(
        VERIFY, params={"expect_head": f"{earlier.sequence}:{'0' * 64}"}, headers=headers
    )

    assert response.json()["broken"]["damage"] == "rewritten chain"
    assert earlier.record_hash not in response.text  # the route shows keyed digests only
