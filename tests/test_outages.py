"""Which database errors are an outage (503, try again) and which are not (app/outages.py), on
errors the real drivers raise."""

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import DBAPIError

from app.db import make_engine
from app.models import Study
from app.outages import is_outage
from tests.pg_cluster import spare_port


def _error_of(engine, statement: str, **params) -> DBAPIError:
    with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
        connection.execute(text(statement), params)
    return raised.value


def test_sqlite_still_locked_after_the_busy_timeout_is_an_outage(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    holder = sqlite3.connect(tmp_path / "vigil.db", isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    impatient = create_engine(url, connect_args={"timeout": 0})
    try:
        error = _error_of(impatient, "INSERT INTO t VALUES (1)")
        assert "database is locked" in str(error)
        assert is_outage(error)
    finally:
        holder.close()
        impatient.dispose()


def test_an_sqlite_file_that_cannot_be_opened_is_an_outage(tmp_path: Path):
    (tmp_path / "a-folder").mkdir()
    engine = make_engine(f"sqlite:///{tmp_path / 'a-folder'}")
    try:
        error = _error_of(engine, "SELECT 1")
        assert "unable to open database file" in str(error)
        assert is_outage(error)
    finally:
        engine.dispose()


def test_a_postgresql_server_that_refuses_connections_is_an_outage():
    # a port nobody listens on: nothing to do with the shared server
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{spare_port()}/vigil")
    try:
        error = _error_of(engine, "SELECT 1")
        assert "Connection refused" in str(error)
        assert is_outage(error)
    finally:
        engine.dispose()


def test_a_postgresql_connection_terminated_mid_request_is_an_outage(fresh_database_url):
    engine = make_engine(fresh_database_url("postgresql"))
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert is_outage(raised.value)
    finally:
        engine.dispose()


def test_a_missing_table_is_not_an_outage(database_url: str):
    engine = make_engine(database_url)
    try:
        assert not is_outage(_error_of(engine, "SELECT * FROM no_such_table"))
    finally:
        engine.dispose()


def test_a_constraint_violation_is_not_an_outage(database_url: str):
    engine = make_engine(database_url)
    row = {"id": uuid.uuid4(), "code": None, "name": "No code", "protocol_key": "x"}
    try:
        with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
            connection.execute(insert(Study).values(**row))
        assert not is_outage(raised.value)
    finally:
        engine.dispose()
