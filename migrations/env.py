"""Alembic environment: the URL from Vigil's settings (or a connection handed in by tests)."""

from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, text

from app.config import get_settings
from app.db import make_engine
from app.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
MIGRATION_LOCK = 0x5649474D  # "VIGM": the advisory lock one migration run holds on PostgreSQL


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )


@contextmanager
def _sqlite_foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it to a new one and dropping the old (batch mode); with
    foreign keys enforced, dropping a table other rows refer to fails. Enforcement is switched
    off for the migration (outside any transaction, where SQLite honours it) and every foreign
    key is checked once it has run: a migration that broke one fails."""
    if connection.dialect.name != "sqlite" or connection.in_transaction():
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(
                f"the migration left rows whose foreign keys point nowhere: {broken}"
            )
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _run(connection: Connection) -> None:
    """The migrations in one transaction. On PostgreSQL it first takes an advisory lock, so
    replicas started together migrate one at a time: the first brings the schema to head, the
    others then read the version it left and have nothing to do. (SQLite, one machine's embedded
    database, is not shared by replicas: its transaction begins IMMEDIATE, taking the write lock,
    and a second migration waits for it up to the busy timeout.)"""
    _configure(connection)
    with _sqlite_foreign_keys_deferred(connection), context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.attributes.get("url") or get_settings().database_url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()  # also when a migration or `alembic check` raises: nothing left open


if context.is_offline_mode():
    raise SystemExit("Vigil migrations run online only: set VIGIL_DATABASE_URL and run upgrade")
run_migrations_online()
