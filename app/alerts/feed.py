"""One process's live alert feed: a single reader of the alert event log fans events out to the
process's SSE streams.

The reader wakes after every local commit that changed an alert (app/events/signals.py), on
PostgreSQL notifications from other processes (app/events/listener.py), and every
``poll_seconds`` in any case. Each time it reads the events after its cursor (one query for all
streams, app/alerts/history.py) and offers each to the subscriptions allowed to see its site.

A subscription only ever holds events with an id greater than the feed's cursor when it
subscribed (``since``): the fan-out and the cursor's move happen together, between two awaits,
so no event can fall between a stream's catch-up from the database and its live queue.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.alerts.history import AlertEvent, EventPage, head, read_events
from app.db import get_reader_sessionmaker
from app.events import signals
from app.events.listener import Listener

log = logging.getLogger("vigil.events")
T = TypeVar("T")


def _reader_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="alert-feed")


class Subscription:
    """One stream's queue. ``site_ids`` None: every site. A stream that falls ``maxsize`` events
    behind is cut off (``None`` is queued); its client reconnects and catches up from the log."""

    def __init__(self, site_ids: frozenset[uuid.UUID] | None, since: int, maxsize: int) -> None:
        self.site_ids = site_ids
        self.since = since
        self.queue: asyncio.Queue[AlertEvent | None] = asyncio.Queue(maxsize)
        self.cut_off = False

    def sees(self, event: AlertEvent) -> bool:
        return self.site_ids is None or event.site_id in self.site_ids

    def offer(self, event: AlertEvent) -> None:
        if self.cut_off or not self.sees(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.cut_off = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class AlertFeed:
    def __init__(
        self,
        sessions: Callable[[], sessionmaker[Session]] = get_reader_sessionmaker,
        *,
        poll_seconds: float = 5.0,
        page_size: int = 500,
        queue_size: int = 1000,
    ) -> None:
        self._sessions = sessions
        self.poll_seconds = poll_seconds
        self.page_size = page_size
        self.queue_size = queue_size
        self.cursor = 0
        self._subscriptions: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self._starting = asyncio.Lock()
        # The feed's reads run on threads of its own: under load the shared worker threads are
        # all busy with requests, and a live event must not wait for one of them.
        self._executor = _reader_threads()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking read on the feed's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # --- lifecycle (lazy: the first stream starts the reader) --------------------------------

    async def _start(self) -> None:
        async with self._starting:
            if self._task is not None:
                return
            self._loop = asyncio.get_running_loop()
            self._wakeup = asyncio.Event()
            self.cursor = await self.run(self.head)
            signals.add_waker(self.wake)
            engine = self._sessions().kw["bind"]
            if engine.dialect.name == "postgresql":
                self._listener = Listener(engine.url, self.wake)
                self._listener.start()
            self._task = asyncio.create_task(self._run(), name="alert-feed")

    async def stop(self) -> None:
        signals.remove_waker(self.wake)
        if self._listener is not None:
            await self.run(self._listener.stop)
            self._listener = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for subscription in self._subscriptions:  # their streams end; clients reconnect
            subscription.cut_off = True
            if not subscription.queue.full():
                subscription.queue.put_nowait(None)
        self._subscriptions.clear()
        self._loop = self._wakeup = None
        self._starting = asyncio.Lock()
        self._executor.shutdown(wait=False)
        self._executor = _reader_threads()

    def wake(self) -> None:
        """Thread-safe: something may have changed; read the log soon."""
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wakeup.set)

    # --- subscriptions --------------------------------------------------------------------------

    async def subscribe(self, site_ids: frozenset[uuid.UUID] | None) -> Subscription:
        await self._start()
        subscription = Subscription(site_ids, self.cursor, self.queue_size)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    # --- the reader -----------------------------------------------------------------------------

    def head(self) -> int:
        """The latest event id there may be (blocking)."""
        with self._sessions()() as session:
            return head(session)

    def read(
        self, after: int, site_ids: frozenset[uuid.UUID] | None = None, limit: int | None = None
    ) -> EventPage:
        """One page of the log (blocking: call it in a worker thread)."""
        with self._sessions()() as session:
            return read_events(session, after, limit or self.page_size, site_ids)

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_seconds)
            self._wakeup.clear()
            try:
                await self._catch_up()
            except Exception:
                log.exception("alert feed: reading the event log failed; retrying")
                await asyncio.sleep(1)

    async def _catch_up(self) -> None:
        while True:
            page = await self.run(self.read, self.cursor)
            # no await from here to the cursor's move: see the module docstring
            for event in page.events:
                for subscription in self._subscriptions:
                    subscription.offer(event)
            self.cursor = page.cursor
            if not page.more:
                return
