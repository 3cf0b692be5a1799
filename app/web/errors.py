"""Errors on the web client's paths answered as pages, not problem+json: a caller who is not
signed in (or whose sign-in ended) goes to the sign-in page and comes back after it; a refusal
or a missing record is a page saying so in words, with the status code the API would send."""

from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.deps import SESSION_COOKIE, Unauthenticated
from app.errors import VigilError, allowed_methods
from app.web.templating import render

NOT_WEB = ("/api/", "/static/", "/healthz", "/readyz", "/docs", "/redoc")
Handler = Callable[[Request, Exception], Awaitable[Response]]


class IdleSignedOut(Unauthenticated):
    """The web sign-in ended after the configured idle time (and was revoked)."""


def is_web(path: str) -> bool:
    return not path.startswith(NOT_WEB)


def sign_in_again(request: Request, reason: str) -> RedirectResponse:
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = {"reason": reason} if reason else {}
    if request.method == "GET" and back not in {"/", "/login"}:
        query["next"] = back
    target = f"/login?{urlencode(query)}" if query else "/login"
    response = RedirectResponse(target, status_code=303)
    if request.headers.get("hx-request"):  # htmx follows a redirect in place: reload instead
        response.headers["HX-Redirect"] = target
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, IdleSignedOut):
        return sign_in_again(request, "idle")
    if isinstance(exc, Unauthenticated):
        return sign_in_again(request, "expired" if request.cookies.get(SESSION_COOKIE) else "")
    if isinstance(exc, VigilError):
        status, detail = exc.status_code, exc.detail
    elif isinstance(exc, StarletteHTTPException):
        status, detail = exc.status_code, str(exc.detail)
    else:  # RequestValidationError: a form field the page did not fill as expected
        status = 422
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        detail = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in errors)
    titles = {403: "Not allowed", 404: "Not found", 405: "Not possible here", 409: "Conflict"}
    titles[422] = "Check the form"
    page = render(request, "error.html", status, title=titles.get(status, "Error"), detail=detail)
    if isinstance(exc, StarletteHTTPException):
        page.headers.update(exc.headers or {})
        if status == 405:
            page.headers["Allow"] = ", ".join(allowed_methods(request))
    return page


def install(app: FastAPI) -> None:
    """Wrap the API's handlers: web paths get pages, every other path what it got before."""
    for kind in (VigilError, StarletteHTTPException, RequestValidationError):
        api_handler = cast(Handler, app.exception_handlers[kind])

        async def handle(request: Request, exc: Exception, api: Handler = api_handler) -> Response:
            if is_web(request.url.path):
                return _page(request, exc)
            return await api(request, exc)

        app.exception_handlers[kind] = handle
