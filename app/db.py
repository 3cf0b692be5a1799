"""Engine, session factory and the request unit of work (one transaction per request)."""

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.config import get_settings
from app.errors import Busy
from app.pg_cursor import DescribedWhenRead


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (savepoints work).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: every commit syncs the write-ahead log, so a 2xx survives power loss, not only a
    # killed process (NORMAL syncs at checkpoints only). Its cost: bench/sqlite_synchronous.py.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``. On SQLite every transaction takes the write lock at BEGIN
    (IMMEDIATE): one that reads and then writes (any audited request, the audit chain's head)
    cannot fail half-way on a concurrent writer. Production concurrency is PostgreSQL's job.
    Its errors never show a statement's parameters (the values of a participant or a user), so
    no log line can carry them."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "psycopg":
        connect_args["cursor_factory"] = DescribedWhenRead
    # A database that does not answer fails a request (503) within seconds instead of holding it.
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = 5
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, hide_parameters=True)


def make_reader_engine(url: str) -> Engine:
    """An engine for read-only work beside the writers (the live alert feed). On SQLite its
    transactions begin deferred and take no write lock (WAL lets readers run beside the one
    writer) and refuse to write; elsewhere it is a plain engine."""
    if make_url(url).get_backend_name() != "sqlite":
        return make_engine(url)
    engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA query_only=ON"))
    return engine


@lru_cache
def get_engine() -> Engine:
    return metrics.watch_pool(make_engine(get_settings().database_url), "main")


@lru_cache
def get_reader_engine() -> Engine:
    url = get_settings().database_url
    if make_url(url).get_backend_name() != "sqlite":
        return get_engine()
    return metrics.watch_pool(make_reader_engine(url), "reader")


def dispose_engines() -> None:
    for cached in (get_reader_engine, get_engine):
        if cached.cache_info().currsize:
            cached().dispose()  # the same engine twice on PostgreSQL: harmless
            cached.cache_clear()
    get_sessionmaker.cache_clear()
    get_reader_sessionmaker.cache_clear()
    get_export_sessionmaker.cache_clear()
    with _slots_made:
        _slots.clear()


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@lru_cache
def get_reader_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_reader_engine(), expire_on_commit=False)


@lru_cache
def get_export_sessionmaker() -> sessionmaker[Session]:
    """Sessions for exports: read-only work whose rows must come from one snapshot (a count
    stated before the rows must match them). SQLite's WAL readers read a snapshot already; on
    PostgreSQL the transaction is REPEATABLE READ."""
    engine = get_reader_engine()
    if engine.dialect.name != "sqlite":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(actor: str, request_id: str | None = None) -> Iterator[Session]:
    """One transaction: commit once on success, roll back on any exception."""
    with get_sessionmaker()() as session:
        session.info["actor"] = actor
        session.info["request_id"] = request_id
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        else:
            session.commit()


SLOT_WAIT_SECONDS = 30


def _waited_too_long() -> Busy:
    return Busy(
        f"the server waited {SLOT_WAIT_SECONDS} s for the database without getting a turn; "
        "nothing was recorded: send the request again"
    )


class _Slot:
    """A place among the requests allowed inside a transaction at once; released once."""

    def __init__(self, semaphore: threading.BoundedSemaphore) -> None:
        if not semaphore.acquire(timeout=SLOT_WAIT_SECONDS):
            raise _waited_too_long()
        self._semaphore: threading.BoundedSemaphore | None = semaphore

    def release(self) -> None:
        semaphore, self._semaphore = self._semaphore, None
        if semaphore is not None:
            semaphore.release()


_slots: list[threading.BoundedSemaphore] = []  # the process's one semaphore, once made
_slots_made = threading.Lock()


def _places() -> int:
    return get_settings().db_concurrency or (1 if _on_sqlite() else 2)


def _transaction_slots() -> threading.BoundedSemaphore:
    """At most VIGIL_DB_CONCURRENCY requests of this process are inside a transaction at once.

    Writers are serialised anyway: by SQLite's write lock, and on PostgreSQL by the audit
    chain's advisory lock, held from a transaction's first audited write to its commit. More
    requests inside at once only contend for that lock and for the interpreter, so the one
    holding the lock runs slower and every request waits longer (measured in bench/). Unset,
    it is 1 on SQLite: every transaction there takes the write lock at BEGIN, and a second one
    waiting for it in SQLite's busy handler polls with sleeps of up to 100 ms, so that the
    holder's next request often takes the lock first (batches of 100 from two clients waited
    up to 7.7 s, bench/ingest.py); waiting here, the next in line is woken as the lock goes.
    On PostgreSQL 2 measured best.

    Made under a lock: the first requests arrive together, and two semaphores (as an
    ``lru_cache`` can make when two threads miss at once) would let more requests in.
    """
    with _slots_made:
        if not _slots:
            _slots.append(threading.BoundedSemaphore(_places()))
        return _slots[0]


def _on_sqlite() -> bool:
    return make_url(get_settings().database_url).get_backend_name() == "sqlite"


@contextmanager
def transaction_slot() -> Iterator[None]:
    """Wait for a place among this process's transactions (for work outside requests, such as
    the scheduler's), so that it queues with the requests instead of racing them for locks."""
    slot = _Slot(_transaction_slots())
    try:
        yield
    finally:
        slot.release()


# one gate per event loop (a process serves on one; the tests' clients each run their own)
_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = (
    weakref.WeakKeyDictionary()
)


async def _request_place(request: Request) -> AsyncIterator[None]:
    """A request waits for its place among the transactions on the event loop, first come first
    served, before it takes a worker thread. Waiting in a worker thread (as it once did) filled
    the thread pool with waiters, so a request already inside a transaction, holding a place and
    the audit chain's lock, queued for a thread for its next step (its handler, its commit)
    behind the requests waiting for its place: under the soak bench's 1,000 tablets the server
    sat at a third of its CPU with every transaction idle."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates.setdefault(loop, asyncio.Semaphore(_places()))
    try:
        async with asyncio.timeout(SLOT_WAIT_SECONDS):
            await gate.acquire()
    except TimeoutError:
        raise _waited_too_long() from None
    try:
        # A client that gave up while its request waited (a tablet's timeout) is not served:
        # under overload, serving requests nobody waits for any more leaves none answered in
        # time. Asked only once the body is read (every API route reads it first, and
        # asking takes the next message off the connection).
        if getattr(request.state, "body_read", False) and await request.is_disconnected():
            raise Busy(
                "the client closed the connection while its request waited for the "
                "database; nothing was recorded"
            )
        yield
    finally:
        gate.release()


def get_session(
    request: Request, _place: Annotated[None, Depends(_request_place, scope="function")] = None
) -> Iterator[Session]:
    """The request's transaction. Function-scoped (``SessionDep``): it commits when the handler
    has returned and its response is built, before the status line is sent, so a 2xx means
    stored; a commit that fails answers an error instead. It also gives the place among the
    transactions back then, so a response that streams for hours (the live alert stream) holds
    none."""
    actor = getattr(request.state, "actor", "anonymous")
    request_id = getattr(request.state, "request_id", None)
    slot = _Slot(_transaction_slots())
    try:
        with unit_of_work(actor, request_id) as session:
            session.info["client_address"] = request.client.host if request.client else None
            yield session
    finally:
        slot.release()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
