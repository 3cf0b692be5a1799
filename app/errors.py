"""Domain errors and their rendering as RFC 9457 problem+json."""

import logging
import traceback
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.outages import is_outage

log = logging.getLogger("vigil.errors")
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://vigil.invalid/problems/"
# Every 401 names the scheme that would be accepted (RFC 9110 section 11.6.1).
BEARER_CHALLENGE = 'Bearer realm="vigil"'


class VigilError(Exception):
    status_code = 400
    title = "Bad request"
    slug = "bad-request"
    retry_after_seconds: int | None = None  # a Retry-After header, when sending again may do

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(VigilError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class Forbidden(VigilError):
    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class Conflict(VigilError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


class InvalidInput(VigilError):
    status_code = 422
    title = "Invalid input"
    slug = "invalid-input"


class ProtocolViolation(VigilError):
    """The request contradicts the protocol version the session runs under."""

    status_code = 422
    title = "Protocol violation"
    slug = "protocol-violation"


class TryLater(VigilError):
    """Nothing was done, and the same request sent again in a few seconds may succeed: 503 with
    a Retry-After header."""

    status_code = 503
    retry_after_seconds = 5


class Busy(TryLater):
    """Too many requests waited too long for the database; nothing was done."""

    title = "Service busy"
    slug = "busy"


class DatabaseUnavailable(TryLater):
    """The database is not answering (app/outages.py); nothing was done."""

    title = "Database unavailable"
    slug = "database-unavailable"


def _absent_not_null(schema: dict[str, Any]) -> None:
    """The optional members are left out of a problem, never sent as null."""
    for member in schema["properties"].values():
        member.pop("default", None)


class FieldProblem(BaseModel):
    model_config = ConfigDict(json_schema_extra=_absent_not_null)

    field: str = Field(description="The input refused, e.g. observations.0.value")
    message: str
    type: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The kind of this reason when a refusal has several (a refused "
        "supplemental dose): a problem type URI",
    )


class Problem(BaseModel):
    """An error as every route answers it (RFC 9457 problem+json)."""

    model_config = ConfigDict(json_schema_extra=_absent_not_null)

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str = Field(description="What went wrong with this request, for a person to act on")
    instance: str = Field(description="The request's path")
    errors: list[FieldProblem] | SkipJsonSchema[None] = Field(
        default=None, description="Each input refused, when the problem is about input"
    )
    request_id: str | SkipJsonSchema[None] = Field(
        default=None, description="On an internal error: quote it when reporting the problem"
    )


def problem(
    status: int, title: str, detail: str, slug: str, instance: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"{PROBLEM_BASE}{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def internal_error(path: str, request_id: str | None) -> JSONResponse:
    return problem(
        500,
        "Internal error",
        "Vigil failed to handle this request; nothing was saved. "
        "Retrying is safe; if it persists, report the request id.",
        "internal-error",
        path,
        request_id=request_id,
    )


class UnexpectedErrors:
    """Answer an exception that no handler took with the 500 problem+json, from inside the app.

    Starlette's ServerErrorMiddleware answers too, but then raises the exception on to the
    server, which drops the connection: every client of a keep-alive connection (a tablet, a
    load balancer) would pay for one request's failure. Once part of an answer is out, the
    exception goes on (the handler below logs it): only closing the connection can tell the
    client that the answer is broken."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            if started:
                raise
            request_id = scope.get("state", {}).get("request_id")
            _log_unexpected(scope["method"], scope["path"], request_id)
            await internal_error(scope["path"], request_id)(scope, receive, send)


def _log_unexpected(method: str, path: str, request_id: str | None) -> None:
    log.exception("unhandled error on %s %s (request id %s)", method, path, request_id)


REQUEST_PARTS = ("body", "query", "path", "header", "cookie")


def field_path(loc: Sequence[str | int]) -> str:
    """How a problem names a refused field: its location joined with dots, from the request part
    on (``('body', 'readings', 1, 'observations', 0, 'value')`` -> ``readings.1.observations.0.
    value``); the part itself when the whole of it is refused (``body``)."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in REQUEST_PARTS:
        parts = parts[1:]
    return ".".join(str(part) for part in parts)


def _domain_problem(request: Request, exc: VigilError) -> JSONResponse:
    response = problem(
        exc.status_code, exc.title, exc.detail, exc.slug, request.url.path, errors=exc.errors
    )
    if exc.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
    if exc.status_code == 401:
        response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
    return response


def _database_error(exc: SQLAlchemyError) -> str:
    """What the log says of a database error that is a bug: the driver's exception, SQLSTATE,
    the constraint, table and column at fault, the statement (its parameters are never in it:
    engines hide them) and the traceback. Not the driver's message, which on PostgreSQL quotes
    the values sent (``invalid input syntax for type integer: "..."``, ``DETAIL: Failing row
    contains (...)``): a participant's or a user's data."""
    cause = getattr(exc, "orig", None) or exc
    diag = getattr(cause, "diag", None)
    named = {
        "SQLSTATE": getattr(cause, "sqlstate", None),
        "constraint": getattr(diag, "constraint_name", None),
        "table": getattr(diag, "table_name", None),
        "column": getattr(diag, "column_name", None),
    }
    facts = ", ".join(f"{name} {value}" for name, value in named.items() if value)
    kind = f"{type(cause).__module__}.{type(cause).__qualname__}"
    if type(cause).__module__ == "sqlite3":  # SQLite names columns and tables, never values
        kind += f": {str(cause).partition(chr(10))[0]}"
    statement = (getattr(exc, "statement", None) or "").strip()
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    return f"{kind} ({facts or 'no details'})\n  statement: {statement}\n{frames}"


def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    log.error(
        "unhandled error on %s %s (request id %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return internal_error(request.url.path, request_id)


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's (Starlette's own 405 names
    only the first such route's, and a path's methods are often split over several routes)."""
    path = request.url.path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path) and route.methods:
            methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """The handlers, and UnexpectedErrors as the innermost middleware (install it first), so
    that its 500 passes through the others (request id, CORS, security headers)."""
    app.add_middleware(UnexpectedErrors)

    @app.exception_handler(VigilError)
    async def _vigil(request: Request, exc: VigilError) -> JSONResponse:
        return _domain_problem(request, exc)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if not is_outage(exc):
            log.error(
                "unhandled database error on %s %s (request id %s): %s",
                request.method,
                request.url.path,
                getattr(request.state, "request_id", None),
                _database_error(exc),
            )
            return internal_error(request.url.path, getattr(request.state, "request_id", None))
        # The driver's own words (no statement, no parameters: no personal data).
        cause = getattr(exc, "orig", None) or exc
        log.warning(
            "database not answering on %s %s: %s",
            request.method,
            request.url.path,
            str(cause).partition("\n")[0] or type(cause).__name__,
        )
        unavailable = DatabaseUnavailable(
            "the database is not answering; nothing was recorded; send the request again "
            f"in {DatabaseUnavailable.retry_after_seconds} s"
        )
        return _domain_problem(request, unavailable)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": field_path(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(
            422, "Invalid input", detail, "invalid-input", request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        response = problem(
            exc.status_code, title, detail, title.lower().replace(" ", "-"), request.url.path
        )
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """What ServerErrorMiddleware answers for an error outside UnexpectedErrors (in a
        middleware) or after an answer began."""
        return _internal_error(request, exc)
