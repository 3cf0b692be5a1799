"""PostgreSQL LISTEN for alert changes committed by other processes (app/events/signals.py).

A thread holds its own connection (outside the pool, in autocommit) and calls ``wake`` for every
notification. When the connection drops it reconnects with a growing pause and wakes the feed
once connected again, since notifications sent meanwhile are lost.
"""

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from app.events.signals import CHANNEL, ORIGIN

log = logging.getLogger("vigil.events")


class Listener:
    def __init__(self, url: URL, wake: Callable[[], None]) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    pause = 0.5
                    self._wake()
                    while not self._stop.is_set():
                        for notification in conn.notifies(timeout=1.0):
                            if notification.payload != ORIGIN:  # not our own commits
                                self._wake()
            except psycopg.Error as exc:
                log.warning("alert listener: %s; reconnecting in %.1f s", exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
