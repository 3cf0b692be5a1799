"""Domain errors and their rendering as RFC 9457 problem+json."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.outages import is_outage

log = logging.getLogger("vigil.errors")
PROBLEM_JSON = "application/problem+json"


class VigilError(Exception):
    status_code = 400
    title = "Bad request"
    slug = "bad-request"

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


def problem(
    status: int, title: str, detail: str, slug: str, instance: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://vigil.invalid/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "/".join(str(p) for p in loc)


def _domain_problem(request: Request, exc: VigilError) -> JSONResponse:
    response = problem(
        exc.status_code, exc.title, exc.detail, exc.slug, request.url.path, errors=exc.errors
    )
    if isinstance(exc, TryLater):
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
    return response


def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "Internal error",
        "Vigil failed to handle this request; nothing was saved. "
        "Retrying is safe; if it persists, report the request id.",
        "internal-error",
        request.url.path,
        request_id=getattr(request.state, "request_id", None),
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VigilError)
    async def _vigil(request: Request, exc: VigilError) -> JSONResponse:
        return _domain_problem(request, exc)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if not is_outage(exc):
            return _internal_error(request, exc)
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
        errors = [
            {"field": _field_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(
            422, "Invalid input", detail, "invalid-input", request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return problem(
            exc.status_code, title, detail, title.lower().replace(" ", "-"), request.url.path
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request, exc)
