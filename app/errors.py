"""Domain errors and their rendering as RFC 9457 problem+json."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

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


class Busy(VigilError):
    """Too many requests waited too long for the database; nothing was done."""

    status_code = 503
    title = "Service busy"
    slug = "busy"


class FieldProblem(BaseModel):
    field: str = Field(description="The input refused, e.g. observations.0.value")
    message: str


def _absent_not_null(schema: dict[str, Any]) -> None:
    """The optional members are left out of a problem, never sent as null."""
    for member in schema["properties"].values():
        member.pop("default", None)


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
    @app.exception_handler(VigilError)
    async def _vigil(request: Request, exc: VigilError) -> JSONResponse:
        return problem(
            exc.status_code, exc.title, exc.detail, exc.slug, request.url.path, errors=exc.errors
        )

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
        response = problem(
            exc.status_code, title, detail, title.lower().replace(" ", "-"), request.url.path
        )
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "Internal error",
            "Vigil failed to handle this request; nothing was saved. "
            "Retrying is safe; if it persists, report the request id.",
            "internal-error",
            request.url.path,
            request_id=getattr(request.state, "request_id", None),
        )
