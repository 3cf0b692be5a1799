"""Replicas started together each run `vigil migrate` against one PostgreSQL database: the
migrations take an advisory lock, so one migrates and the others find the schema at head. Each
then loads the protocols, and each version is stored once (on SQLite too)."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, inspect, select

from app import migrations
from app.config import ROOT
from app.db import make_engine
from app.migrations import SchemaState, schema_state
from app.models import Base, ProtocolVersion


def _together(url: str, *command: str) -> None:
    """Three `vigil` processes running ``command`` at once; each must succeed."""
    env = {**os.environ, "VIGIL_DATABASE_URL": url}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", *command],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], "\n---\n".join(outputs)


@pytest.mark.slow
def test_three_migrations_started_together_on_one_postgres_database_all_succeed(
    fresh_database_url,
):
    url = fresh_database_url("postgresql")
    _together(url, "migrate")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert schema_state(connection)[0] is SchemaState.CURRENT
            assert set(inspect(connection).get_table_names()) == set(Base.metadata.tables) | {
                "alembic_version"
            }
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_protocol_loads_started_together_store_each_version_once(fresh_database_url, backend):
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    _together(url, "protocol", "load")
    files = len(list((ROOT / "protocols").glob("*.yaml")))
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(ProtocolVersion))
            assert stored == files
    finally:
        engine.dispose()
