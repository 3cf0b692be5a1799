"""Which database errors are an outage: the database is not answering, the request did nothing,
and the same request sent again later may succeed (answered 503, app/errors.py).

Everything else stays what it is: a constraint violation, a missing table or a mistake in a
query is a fault of Vigil or of the request, and sending it again would fail the same way.
"""

import sqlite3

import psycopg
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

# PostgreSQL SQLSTATEs of a server that is going away, restarting or full of connections:
# class 08 (connection exception) by prefix, and these.
_POSTGRES_UNAVAILABLE = frozenset(
    {
        "57P01",  # admin_shutdown: terminating connection due to administrator command
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the database system is starting up / shutting down
        "53300",  # too_many_connections
    }
)
# SQLite primary result codes: still locked after the busy timeout, or the file cannot be opened.
_SQLITE_TRY_LATER = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN})


def _driver_outage(error: BaseException | None) -> bool:
    if isinstance(error, psycopg.Error):
        # No SQLSTATE: the client library itself failed (connection refused, server gone).
        state = error.sqlstate
        return state is None or state.startswith("08") or state in _POSTGRES_UNAVAILABLE
    if isinstance(error, sqlite3.Error):
        return error.sqlite_errorcode & 0xFF in _SQLITE_TRY_LATER
    return False


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says the database is not answering."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DisconnectionError):
            return True
        # SQLAlchemy marks an error of a connection that has died (its pool then reconnects)
        if isinstance(seen, OperationalError | InterfaceError) and seen.connection_invalidated:
            return True
        if isinstance(seen, OperationalError) and _driver_outage(seen.orig):
            return True
        seen = seen.__cause__
    return False
