"""The session listeners every Vigil process needs before it writes: the audit trail
(app/audit/recorder.py) and the announcements of committed alert changes to the live streams of
every process (app/events/signals.py).

``install()`` is called by create_app(), the `vigil` command and any other process that writes
(a worker, a script); importing a module registers nothing. It is idempotent.
"""

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.audit import recorder
from app.events import signals


def install() -> None:
    """Listen on every Session, audit trail first: its records are chained before the alert
    notification goes out, both in the same commit."""
    for name, listener in (*recorder.SESSION_LISTENERS, *signals.SESSION_LISTENERS):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
