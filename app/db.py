"""Engine, session factory and the request unit of work (one transaction per request)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (savepoints work).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, *, immediate: bool = False) -> Engine:
    """An engine for ``url``. On SQLite, ``immediate`` engines take the write lock at BEGIN:
    a transaction that reads and then writes cannot fail half-way on a concurrent writer."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        return engine
    return create_engine(url, pool_pre_ping=True)


@lru_cache
def _engines() -> tuple[Engine, Engine]:
    """The (write, read) engines; on PostgreSQL one pool serves both."""
    url = get_settings().database_url
    writer = make_engine(url, immediate=True)
    return writer, make_engine(url) if url.startswith("sqlite") else writer


def get_engine(write: bool = True) -> Engine:
    return _engines()[0 if write else 1]


def dispose_engines() -> None:
    if _engines.cache_info().currsize:
        for engine in set(_engines()):
            engine.dispose()
        _engines.cache_clear()
        get_sessionmaker.cache_clear()


@lru_cache
def get_sessionmaker(write: bool = True) -> sessionmaker[Session]:
    return sessionmaker(get_engine(write), expire_on_commit=False)


def run_after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Queue a side effect that leaves the process; a rollback drops it."""
    session.info.setdefault("after_commit", []).append(callback)


@contextmanager
def unit_of_work(
    actor: str, request_id: str | None = None, *, write: bool = True
) -> Iterator[Session]:
    """One transaction: commit once on success, roll back on any exception."""
    with get_sessionmaker(write)() as session:
        session.info["actor"] = actor
        session.info["request_id"] = request_id
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        else:
            session.commit()
            for callback in session.info.pop("after_commit", []):
                callback()


def get_session(request: Request) -> Iterator[Session]:
    actor = getattr(request.state, "actor", "anonymous")
    request_id = getattr(request.state, "request_id", None)
    write = request.method not in {"GET", "HEAD", "OPTIONS"}
    with unit_of_work(actor, request_id, write=write) as session:
        session.info["client_address"] = request.client.host if request.client else None
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
