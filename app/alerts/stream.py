"""GET /api/v1/alerts/stream: new alerts and alert state changes as Server-Sent Events.

An event's id is the sequence of the alert change's audit record (app/alerts/history.py). A client
that reconnects sends the last id it saw (``Last-Event-ID``, which a browser's EventSource does by
itself, or ``?after=``) and first receives every event after it from the log, then live ones:
nothing is lost across a reconnect, a server restart or a reconnect to another process. The first
event of every stream, ``ready``, carries the id the stream starts from, so a client that has seen
no alert yet can resume from there too.

The stream shows the alerts of the caller's sites (every site for the study-wide roles). The
caller's token is checked again every ``RECHECK_SECONDS``: a revoked or expired token, a disabled
account or a role without alert:read ends the stream with an ``error`` event (a problem+json
body); a change of the caller's sites applies from that check on.

When the server stops (SIGTERM), every stream sends the events already queued for it, then a
comment saying so, and ends cleanly (its chunked body closed, not cut), within about a second
(sse-starlette notices the shutdown every 0.5 s): the process can exit at once, and the client
reconnects, to this server once it is back or to another, with Last-Event-ID.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from app import metrics
from app.alerts import history
from app.alerts.feed import AlertFeed, Subscription
from app.alerts.history import AlertEvent
from app.auth import tokens
from app.auth.deps import Authorize, CurrentPrincipal, credential
from app.checked_input import CheckedRoute
from app.db import get_reader_sessionmaker
from app.errors import InvalidInput
from app.permissions import ALL_SITES_ROLES, Permission, Role, allows
from app.wording import with_article

router = APIRouter(tags=["alerts"], route_class=CheckedRoute)

RECHECK_SECONDS = 30.0
RETRY_MILLISECONDS = 2000  # how soon a browser reconnects after losing the stream
# How long a stream may take to end once the server stops before it is cut off (it takes
# milliseconds unless a read of the database hangs).
SHUTDOWN_GRACE_SECONDS = 5.0
STOPPING = "server stopping; reconnect with Last-Event-ID"
EVENT_TYPES = ", ".join(["ready", *history.EVENT_TYPES.values(), "error"])


def _event(event: AlertEvent) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(event.payload(), separators=(",", ":")), event=event.type, id=str(event.id)
    )


def _problem(detail: str) -> ServerSentEvent:
    body = {"type": "about:blank", "title": "Stream ended", "status": 401, "detail": detail}
    return ServerSentEvent(data=json.dumps(body), event="error")


def _visible_sites(role: Role, site_ids: frozenset[uuid.UUID]) -> frozenset[uuid.UUID] | None:
    return None if role in ALL_SITES_ROLES else site_ids


def _recheck(plaintext: str) -> tuple[str | None, frozenset[uuid.UUID] | None]:
    """(why the stream must end, or None; the sites the caller sees now)."""
    with get_reader_sessionmaker()() as session:
        found = tokens.resolve(session, plaintext)
        if found is None:
            return "the token has expired or was revoked, or the account was disabled", None
        role = Role(found.user.role)
        if not allows(role, Permission.CLINICAL_ALERT_READ):
            return f"{with_article(role.value)} may no longer read alerts", None
        return None, _visible_sites(role, found.site_ids)


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    if after is not None:
        return after
    if last_event_id is None or not last_event_id.strip():
        return None
    try:
        value = int(last_event_id)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidInput(
            f"Last-Event-ID {last_event_id!r} is not an event id of this stream (a whole number)"
        )
    return value


async def _end_at_shutdown(shutdown: anyio.Event, subscription: Subscription) -> None:
    """Once the server stops, the stream's queue ends after what it holds (or at once if it
    is full: the client catches up from the log)."""
    await shutdown.wait()
    subscription.cut_off = True  # nothing more is queued
    while subscription.queue.full():
        subscription.queue.get_nowait()
    subscription.queue.put_nowait(None)


async def _events(
    feed: AlertFeed,
    site_ids: frozenset[uuid.UUID] | None,
    resume_from: int | None,
    plaintext: str,
    shutdown: anyio.Event,
) -> AsyncIterator[ServerSentEvent]:
    # Subscribed here, not in the endpoint: a generator that never starts (the client left at
    # once) never runs its finally, and its subscription would stay behind.
    subscription = await feed.subscribe(site_ids)
    ending = asyncio.create_task(_end_at_shutdown(shutdown, subscription))
    metrics.ALERT_STREAMS.inc()
    try:
        last = subscription.since if resume_from is None else resume_from
        yield ServerSentEvent(
            data=json.dumps({"last_event_id": last}),
            event="ready",
            id=str(last),
            retry=RETRY_MILLISECONDS,
        )
        if resume_from is not None:
            after, more = resume_from, True
            while more:
                page = await feed.run(feed.read, after, subscription.site_ids)
                for logged in page.events:
                    yield _event(logged)
                    last = logged.id
                after, more = page.cursor, page.more
        recheck_at = time.monotonic() + RECHECK_SECONDS
        while True:
            try:
                event: AlertEvent | None = await asyncio.wait_for(
                    subscription.queue.get(), max(0.0, recheck_at - time.monotonic())
                )
            except TimeoutError:
                reason, sites = await feed.run(_recheck, plaintext)
                if reason is not None:
                    yield _problem(f"{reason}; sign in again")
                    return
                subscription.site_ids = sites
                recheck_at = time.monotonic() + RECHECK_SECONDS
                continue
            if event is None:  # cut off (fell too far behind) or the server is stopping
                if shutdown.is_set():
                    yield ServerSentEvent(comment=STOPPING)
                return  # the client reconnects with Last-Event-ID and catches up from the log
            if event.id <= last or not subscription.sees(event):
                continue
            yield _event(event)
            last = event.id
    finally:
        ending.cancel()
        metrics.ALERT_STREAMS.dec()
        feed.unsubscribe(subscription)


@router.get(
    "/alerts/stream",
    dependencies=[Depends(Authorize(Permission.CLINICAL_ALERT_READ))],
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": f"text/event-stream; event types: {EVENT_TYPES}. Each alert event's "
            "data is JSON: event_id, type, occurred_at, actor, changes (the fields the change "
            "set) and alert (the alert as GET /alerts/{id} shows it when the event is sent).",
            "content": {"text/event-stream": {}},
        }
    },
)
async def alert_stream(
    request: Request,
    principal: CurrentPrincipal,
    last_event_id: Annotated[
        str | None, Header(description="the id of the last event received (set by EventSource)")
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, description="resume after this event id (for clients that cannot set headers)"),
    ] = None,
) -> EventSourceResponse:
    """Alerts of the caller's sites as they open and change, resumable with Last-Event-ID."""
    resume_from = _resume_point(last_event_id, after)
    found = credential(request)
    assert found is not None  # the policy above authenticated the caller
    feed: AlertFeed = request.app.state.alert_feed
    if resume_from is not None:
        newest = await feed.run(feed.head)
        if resume_from > newest:
            raise InvalidInput(
                f"Last-Event-ID {resume_from} is ahead of this server's event log (latest "
                f"{newest}); reconnect without it and reload the alerts (GET /alerts)"
            )
    sites = _visible_sites(principal.role, principal.site_ids)
    shutdown = anyio.Event()  # set by sse-starlette when the server stops
    return EventSourceResponse(
        _events(feed, sites, resume_from, found[0], shutdown),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )
