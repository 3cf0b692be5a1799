"""The session listeners every Vigil process needs before it writes: the outbox of alert
notifications (app/notifications/outbox.py), the audit trail (app/audit/recorder.py) and the
announcements of committed alert changes to the live streams of every process
(app/events/signals.py).

``install()`` is called by create_app(), the `vigil` command and any other process that writes
(a worker, a script); importing a module registers nothing. It is idempotent.
"""

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.audit import recorder
from app.events import signals
from app.notifications import outbox


def install() -> None:
    """Listen on every Session: the outbox first (it reads the audit records the trail is about
    to chain, and its rows stay out of the chain's critical section), then the audit trail,
    whose records are chained before the alert notification goes out, all in the same commit."""
    listening = (*outbox.SESSION_LISTENERS, *recorder.SESSION_LISTENERS, *signals.SESSION_LISTENERS)
    for name, listener in listening:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
