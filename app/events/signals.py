"""Alert changes announce themselves once their transaction commits.

A flush that writes an alert marks its session. On PostgreSQL, a marked
transaction notifies channel ``vigil_alerts`` just before it commits, with the process's
``ORIGIN`` as payload; the server delivers it to every listening process only when the commit
succeeds, and each listener ignores its own process's. After a commit the process wakes its own
alert feeds directly, without the round trip through the server.

A wake-up carries no data: the feeds read what changed from the audit trail, in the order it was
committed (app/alerts/feed.py). A spurious wake-up costs one query; a lost one is caught by the
feed's next poll.

The listeners (``SESSION_LISTENERS``) are installed by app.listeners.install(), which every
Vigil process calls before it writes: importing this module registers nothing.
"""

import threading
import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session, UOWTransaction

from app.models.alert import Alert

CHANNEL = "vigil_alerts"
# This process's name in its notifications: its own commits have woken its feeds already.
ORIGIN = uuid.uuid4().hex
_MARK = "alerts_changed"

_wakers: set[Callable[[], None]] = set()
_wakers_lock = threading.Lock()


def add_waker(wake: Callable[[], None]) -> None:
    """Call ``wake`` (from any thread) after every commit that changed an alert."""
    with _wakers_lock:
        _wakers.add(wake)


def remove_waker(wake: Callable[[], None]) -> None:
    with _wakers_lock:
        _wakers.discard(wake)


def wake_all() -> None:
    with _wakers_lock:
        wakers = list(_wakers)
    for wake in wakers:
        wake()


def _mark_alert_changes(session: Session, _flush: UOWTransaction) -> None:
    if any(isinstance(o, Alert) for o in (*session.new, *session.dirty)):
        session.info[_MARK] = True


# A savepoint's release or rollback dispatches the same events as the transaction's: only the
# outermost transaction's count. A rolled-back savepoint may leave the mark set for nothing,
# which costs one spurious wake-up.


def _notify_other_processes(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.flush()  # what the commit would flush, so that its alert changes are marked
    if session.info.get(_MARK):
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            # delivered at commit; notifications of one transaction are folded into one
            connection.execute(
                text("SELECT pg_notify(:channel, :origin)"), {"channel": CHANNEL, "origin": ORIGIN}
            )


def _announce(session: Session) -> None:
    if not session.in_nested_transaction() and session.info.pop(_MARK, False):
        wake_all()


def _forget(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_MARK, None)


SESSION_LISTENERS = (
    ("after_flush", _mark_alert_changes),
    ("before_commit", _notify_other_processes),
    ("after_commit", _announce),
    ("after_rollback", _forget),
)
