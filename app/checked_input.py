"""What a request may carry, checked once for every API route: its JSON body, query string and
path parameters. Refused with 422 naming the field (``readings.0.source``, ``actor``):

- C0 control characters other than tab, line feed and carriage return, NUL among them (PostgreSQL
  cannot store NUL in text, SQLite would: the two databases would answer differently);
- lone UTF-16 surrogates (JSON can write ``"\\ud800"``; it is no text, and can be neither stored
  nor answered);
- a key given twice in one JSON object (a JSON parser silently keeps one of the two).

FastAPI reads a JSON body with ``await request.json()``; CheckedRoute decodes it first, with
these checks, and hands the route a request whose ``json()`` answers the checked value. A route
that takes the items of a list one by one (the vital-reading batch) overrides ``take_refusals``
to refuse an item instead of the request.

A write with an ``Idempotency-Key`` header is fingerprinted here (its body as sent) and run
through app/idempotency.py: its answer kept in its own transaction, or the kept one replayed.
"""

import functools
import json
import re
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from app import idempotency
from app.schemas import ShownOnce

REFUSED_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# The only ways JSON text can carry one: an escape \u0000-\u001f or \ud800-\udfff (a few
# harmless ones match too, such as \u0009 or an escaped backslash before "u0000": the walk
# then decides).
_MAY_ESCAPE_REFUSED = re.compile(rb"\\u(?:00[01]|[dD][89a-fA-F])", re.ASCII)

Loc = tuple[str | int, ...]
RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class Refusal:
    loc: Loc  # where, from the body, query or path on: ("readings", 0, "source")
    message: str


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be taken, or None."""
    found = REFUSED_CHARACTER.search(text)
    if found is None:
        return None
    code = f"U+{ord(found.group()):04X}"
    if found.group() >= "\ud800":
        return (
            f"holds a lone UTF-16 surrogate ({code}) at character {found.start()}, which is "
            "not text; send valid Unicode"
        )
    return (
        f"holds the control character {code} at character {found.start()}; Vigil takes no "
        "control characters but tab, line feed and carriage return: remove it"
    )


def shown(key: str) -> str:
    """A key as it can be named in an answer (escaped if it holds what is refused)."""
    return key if text_problem(key) is None else json.dumps(key)[1:-1]


def decode_json(body: bytes) -> tuple[Any, list[Refusal]]:
    """The decoded body and what in it is refused. Raises ValueError if it is not JSON."""
    duplicated: dict[int, list[str]] = {}

    def object_of(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        made: dict[str, Any] = {}
        for key, value in pairs:
            if key in made:
                duplicated.setdefault(id(made), []).append(key)
            made[key] = value
        return made

    value = json.loads(body, object_pairs_hook=object_of)
    refusals: list[Refusal] = []
    if not duplicated and _MAY_ESCAPE_REFUSED.search(body) is None:
        # JSON text cannot hold a raw control character, only an escaped one: without such an
        # escape and without a repeated key there is nothing to find, and no walk (a batch of
        # readings is thousands of nodes, on the ingest path).
        return value, refusals
    # A stack, not recursion (the nesting depth is the client's), popped in document order.
    pending: list[tuple[Loc, Any]] = [((), value)]
    while pending:
        loc, node = pending.pop()
        if isinstance(node, str):
            if (problem := text_problem(node)) is not None:
                refusals.append(Refusal(loc, problem))
        elif isinstance(node, list):
            pending.extend(reversed([((*loc, i), item) for i, item in enumerate(node)]))
        elif isinstance(node, dict):
            for key in duplicated.get(id(node), []):
                refusals.append(
                    Refusal(
                        (*loc, shown(key)),
                        f"the key {shown(key)!r} is given twice in one object; give it once",
                    )
                )
            for key in node:
                if (problem := text_problem(key)) is not None:
                    refusals.append(Refusal((*loc, shown(key)), f"the key {problem}"))
            pending.extend(reversed([((*loc, shown(key)), item) for key, item in node.items()]))
    return value, refusals


def parameter_refusals(where: str, parameters: Iterable[tuple[str, Any]]) -> list[Refusal]:
    return [
        Refusal((where, shown(name)), problem)
        for name, value in parameters
        for problem in (text_problem(name), isinstance(value, str) and text_problem(value))
        if problem
    ]


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI may read the body as JSON (no content type, or application/*json)."""
    if not content_type:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class _CheckedRequest(Request):
    """The request with its body already read and decoded."""

    def __init__(self, request: Request, body: bytes, value: Any) -> None:
        super().__init__(request.scope, request.receive)
        self._checked_body = body
        self._checked_value = value

    async def body(self) -> bytes:
        return self._checked_body

    async def json(self) -> Any:
        return self._checked_value


def _keeping_answers(
    make: Callable[[Any], RouteHandler],
) -> Callable[[Any], RouteHandler]:
    """Wrap a ``get_route_handler`` so that the handler of the most derived one (a subclass's
    wraps CheckedRoute's) is wrapped in turn by :func:`_keeping`: the answer kept is the one
    the route gives in its final form (a FHIR route's refusals are OperationOutcomes)."""

    def get_route_handler(self: Any) -> RouteHandler:
        handler = make(self)
        outermost = next(k for k in type(self).__mro__ if "get_route_handler" in vars(k))
        return _keeping(handler) if vars(outermost)["get_route_handler"] is wrapper else handler

    wrapper = functools.wraps(make)(get_route_handler)
    return wrapper


def _keeping(handler: RouteHandler) -> RouteHandler:
    """The route, and for a write whose Idempotency-Key was claimed (app/idempotency.py) its
    answer kept in the request's transaction, or the kept answer replayed."""

    async def route_handler(request: Request) -> Response:
        try:
            response = await handler(request)
        except idempotency.Replay as replay:
            return replay.response
        except Exception as exc:
            keyed = getattr(request.state, "idempotency", None)
            if keyed is None or keyed.caller_id is None:
                raise
            refusal = await idempotency.refusal_answer(request, exc)
            if refusal is None:
                raise
            idempotency.keep(keyed, refusal, refused=True)
            return refusal
        keyed = getattr(request.state, "idempotency", None)
        if keyed is not None:
            idempotency.keep(keyed, response)
        return response

    return route_handler


class CheckedRoute(APIRoute):
    """The route class of every API router."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls).get("get_route_handler")
        if own is not None:
            cls.get_route_handler = _keeping_answers(own)  # type: ignore[method-assign]

    def take_refusals(self, value: Any, refusals: list[Refusal]) -> tuple[Any, list[Refusal]]:
        """The body to hand on and the refusals left for the whole request."""
        return value, refusals

    @_keeping_answers
    def get_route_handler(self) -> RouteHandler:
        handler = super().get_route_handler()
        shown_once = isinstance(self.response_model, type) and issubclass(
            self.response_model, ShownOnce
        )

        async def route_handler(request: Request) -> Response:
            refusals = parameter_refusals("query", request.query_params.multi_items())
            refusals += parameter_refusals("path", request.path_params.items())
            body = await request.body()
            request.state.body_read = True  # the connection holds nothing more (app/db.py)
            keying = idempotency.is_keyed(request)
            canonical_body = body
            if body and _is_json(request.headers.get("content-type")):
                try:
                    value, in_body = decode_json(body)
                except (ValueError, RecursionError):
                    pass  # not JSON: FastAPI answers it as it does
                else:
                    if keying:  # as sent, before take_refusals changes it
                        canonical_body = idempotency.canonical_json(value)
                    value, in_body = self.take_refusals(value, in_body)
                    refusals += [Refusal(("body", *r.loc), r.message) for r in in_body]
                    request = _CheckedRequest(request, body, value)
            keyed = (
                idempotency.read_key(request, self.path_format, canonical_body, shown_once)
                if keying
                else None
            )
            if refusals:
                raise RequestValidationError(
                    [{"loc": r.loc, "msg": r.message, "type": "refused_input"} for r in refusals]
                )
            if keyed is None:
                return await handler(request)
            with idempotency.in_flight(keyed):
                request.state.idempotency = keyed
                return await handler(request)

        return route_handler
