"""Whole-request idempotency: a write (POST, PUT, PATCH under /api/v1) sent with an
``Idempotency-Key`` header is done once, and the same request sent again with the same key gets
the first answer back (marked ``Idempotent-Replayed: true``) instead of being done again.

The steps, for every API route at once (app/checked_input.py's CheckedRoute and the route's
``Authorize`` dependency, app/auth/deps.py):

1. ``read_key``, before the route runs: the key is checked (400 if malformed) and the request's
   fingerprint taken (a SHA-256 of the method, the path, the query and the canonical body: JSON
   with its keys sorted, any other body as sent). While a request with the same key and
   credentials is in flight in this process, another one is answered 409 at once.
2. ``claim``, once the caller is known, inside the request's transaction: on PostgreSQL a
   transaction-level advisory lock on (caller, route, key), tried without waiting (409 if
   another process holds it); on SQLite every transaction holds the write lock, so a duplicate
   from another process waits for the first to commit and then finds its answer. A kept answer
   is replayed (the same fingerprint) or the request refused with 422 (another fingerprint);
   otherwise a savepoint is opened and the route runs.
3. ``keep``, once the route has answered and before the request's transaction commits
   (app/db.py): the answer (status, body, the headers in ``REPLAYED_HEADERS``) is added to that
   transaction, so the write and its kept answer are committed together, or neither is. A 4xx
   the route answers is kept too, after rolling back the savepoint (whatever the route had
   written goes): the same request gets the same refusal. A 5xx is not kept: the key can be
   used again.

Kept answers are forgotten after VIGIL_IDEMPOTENCY_KEEP_HOURS (lazily when the key comes again,
and by the scheduler's tick). A key is never taken on a route whose answer shows a secret once
(a new token: app.schemas.ShownOnce; signing in is one), and is ignored on a route without a
caller (none to keep it for) and outside /api/v1 (the web client's forms).
"""

import hashlib
import inspect
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request, Response
from sqlalchemy import delete, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from app.clock import utcnow
from app.config import get_settings
from app.errors import VigilError
from app.models import IdempotencyKey

HEADER = "idempotency-key"
API_PREFIX = "/api/v1/"
REPLAYED = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[A-Za-z0-9._~:+/=-]{1,255}")
KEYED_METHODS = frozenset({"POST", "PUT", "PATCH"})
# What an answer carries, beside its status and body, that is worth replaying; the others
# (security headers, the request id) are the replaying request's own.
REPLAYED_HEADERS = ("content-type", "location", "content-location", "etag", "last-modified")
IN_FLIGHT_RETRY_SECONDS = 1
ADVISORY_CLASS = 0x49444D50  # "IDMP": the class of the advisory locks on keys (two-int4 form)


class InvalidIdempotencyKey(VigilError):
    status_code = 400
    title = "Invalid idempotency key"
    slug = "invalid-idempotency-key"


class IdempotencyKeyInFlight(VigilError):
    status_code = 409
    title = "Request in progress"
    slug = "idempotency-key-in-flight"
    retry_after_seconds = IN_FLIGHT_RETRY_SECONDS


class IdempotencyKeyReused(VigilError):
    status_code = 422
    title = "Idempotency key reused"
    slug = "idempotency-key-reused"


@dataclass
class KeyedRequest:
    key: str
    method: str
    route: str
    digest: str
    credential: str  # a digest of the request's credentials, for the in-process check
    caller_id: uuid.UUID | None = None  # once claimed
    session: Session | None = field(default=None, repr=False)
    savepoint: SessionTransaction | None = field(default=None, repr=False)

    @property
    def in_process(self) -> tuple[str, str, str, str]:
        return self.credential, self.method, self.route, self.key


class Replay(Exception):
    """Not an error: the claim found the answer to give (raised out of the dependencies)."""

    def __init__(self, response: Response) -> None:
        super().__init__("replayed")
        self.response = response


def is_keyed(request: Request) -> bool:
    """Whether the request is a write of the API that carries a key (the web client's forms
    are no API: their header, which no browser sends, is ignored)."""
    return (
        request.method in KEYED_METHODS
        and HEADER in request.headers
        and request.url.path.startswith(API_PREFIX)
    )


def canonical_json(value: Any) -> bytes:
    """A decoded JSON body as the same bytes however it was spaced and its keys ordered; ASCII
    escapes, since it may hold lone surrogates (refused later, but fingerprinted first)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def read_key(request: Request, route: str, canonical_body: bytes, shown_once: bool) -> KeyedRequest:
    """The request's key and fingerprint (``canonical_body``: the body as sent, or
    canonical_json of it)."""
    key = request.headers[HEADER]
    if KEY_PATTERN.fullmatch(key) is None:
        raise InvalidIdempotencyKey(
            "the Idempotency-Key header is 1 to 255 characters among letters, digits and "
            "- _ . ~ : + / = (a UUID will do); send a valid key, or none"
        )
    if shown_once:
        raise InvalidIdempotencyKey(
            "this answer shows a secret once and is not kept, so it cannot be replayed: "
            "send this request without an Idempotency-Key header"
        )
    fingerprint = hashlib.sha256()
    for part in (
        request.method,
        request.url.path,
        json.dumps(sorted(request.query_params.multi_items())),
    ):
        fingerprint.update(part.encode() + b"\n")
    fingerprint.update(canonical_body)
    credentials = request.headers.get("authorization") or request.headers.get("cookie") or ""
    return KeyedRequest(
        key=key,
        method=request.method,
        route=route,
        digest=fingerprint.hexdigest(),
        credential=hashlib.sha256(credentials.encode()).hexdigest(),
    )


_in_flight: set[tuple[str, str, str, str]] = set()
_in_flight_lock = threading.Lock()


def _in_flight_refusal() -> IdempotencyKeyInFlight:
    return IdempotencyKeyInFlight(
        "a request with this Idempotency-Key is still being handled; nothing was done for "
        f"this one: send it again in {IN_FLIGHT_RETRY_SECONDS} s to get its answer"
    )


@contextmanager
def in_flight(keyed: KeyedRequest) -> Iterator[None]:
    """Mark the key in flight in this process for as long as the request runs (409 if it
    already is): a duplicate is answered at once instead of waiting for the database."""
    with _in_flight_lock:
        if keyed.in_process in _in_flight:
            raise _in_flight_refusal()
        _in_flight.add(keyed.in_process)
    try:
        yield
    finally:
        with _in_flight_lock:
            _in_flight.discard(keyed.in_process)


def keep_for() -> timedelta:
    return timedelta(hours=get_settings().idempotency_keep_hours)


def _advisory_key(keyed: KeyedRequest, caller_id: uuid.UUID) -> int:
    scope = f"{caller_id} {keyed.method} {keyed.route} {keyed.key}".encode()
    return int.from_bytes(hashlib.sha256(scope).digest()[:4], "big", signed=True)


def claim(session: Session, request: Request, caller_id: uuid.UUID) -> None:
    """Take the request's key for ``caller_id`` in the request's transaction (a no-op without
    a key). Raises Replay with the kept answer, or 409/422 problems."""
    keyed: KeyedRequest | None = getattr(request.state, "idempotency", None)
    if keyed is None or keyed.caller_id is not None:
        return
    if session.get_bind().dialect.name == "postgresql":
        taken = session.execute(
            text("SELECT pg_try_advisory_xact_lock(:class, :key)"),
            {"class": ADVISORY_CLASS, "key": _advisory_key(keyed, caller_id)},
        ).scalar_one()
        if not taken:
            raise _in_flight_refusal()
    kept = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.caller_id == caller_id,
            IdempotencyKey.method == keyed.method,
            IdempotencyKey.route == keyed.route,
            IdempotencyKey.key == keyed.key,
        )
    ).one_or_none()
    if kept is not None and kept.created_at <= utcnow() - keep_for():
        session.delete(kept)
        session.flush()
        kept = None
    if kept is not None:
        if kept.request_digest != keyed.digest:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for another request (another body, path or "
                f"query) at {kept.created_at.isoformat()}; nothing was done: use a new key for "
                "a new request"
            )
        raise Replay(replayed(kept))
    keyed.caller_id, keyed.session = caller_id, session
    keyed.savepoint = session.begin_nested()


def replayed(kept: IdempotencyKey) -> Response:
    response = Response(content=kept.body, status_code=kept.status_code)
    for name, value in kept.headers.items():
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response


def keep(keyed: KeyedRequest, response: Response, *, refused: bool = False) -> None:
    """Add the answer to the request's transaction (a claimed key only; never a 5xx, nor a
    streamed answer). ``refused``: the route raised; what it wrote is rolled back first."""
    session, savepoint = keyed.session, keyed.savepoint
    if session is None or savepoint is None or keyed.caller_id is None:
        return
    if savepoint.is_active:
        if refused:
            savepoint.rollback()
        else:
            savepoint.commit()
    body = getattr(response, "body", None)
    if response.status_code >= 500 or not isinstance(body, bytes):
        return
    session.add(
        IdempotencyKey(
            caller_id=keyed.caller_id,
            method=keyed.method,
            route=keyed.route,
            key=keyed.key,
            request_digest=keyed.digest,
            status_code=response.status_code,
            headers={n: response.headers[n] for n in REPLAYED_HEADERS if n in response.headers},
            body=body,
            created_at=utcnow(),
        )
    )
    session.flush()


async def refusal_answer(request: Request, exc: Exception) -> Response | None:
    """The answer the application gives for ``exc`` if it is a refusal (4xx) to keep, else
    None (the exception goes on, and the request's transaction rolls back)."""
    if isinstance(exc, Replay | SQLAlchemyError) or not isinstance(exc, Exception):
        return None
    handlers: dict[Any, Any] = request.app.exception_handlers
    handler = next(
        (handlers[cls] for cls in type(exc).__mro__ if cls in handlers and cls is not Exception),
        None,
    )
    if handler is None:
        return None
    response = handler(request, exc)
    if inspect.isawaitable(response):
        response = await response
    if not isinstance(response, Response) or response.status_code >= 500:
        return None
    return response


def forget_expired(session: Session, now: datetime) -> int:
    """Delete the kept answers older than the keep time; how many."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at <= now - keep_for())
    )
    return int(getattr(result, "rowcount", 0) or 0)
