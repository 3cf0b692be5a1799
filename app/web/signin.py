"""The web client's sign-in and sign-out pages, on the API's sign-in service: the same
accounts, the same lockout, the same audit records, the same session cookie."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import login as signin
from app.auth import service
from app.auth.deps import SESSION_COOKIE, Authorize, CurrentPrincipal
from app.auth.endpoints import cookie_options
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.permissions import Permission
from app.web import csrf
from app.web.templating import local_time, render

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

REASONS = {
    "idle": "You were signed out after a time without use. Sign in again.",
    "expired": "Your sign-in has ended. Sign in again.",
    "signed-out": "You have signed out.",
}


def _next_page(value: str | None) -> str:
    """Only a path of this site (never '//elsewhere' or 'https://...'): no open redirect."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


def _login_page(
    request: Request, status_code: int = 200, error: str | None = None, username: str = ""
) -> HTMLResponse:
    token = csrf.login_token(request)
    response = render(
        request,
        "login.html",
        status_code,
        principal=None,
        csrf_token=token,
        error=error,
        notice=REASONS.get(request.query_params.get("reason", "")),
        username=username,
        next_page=_next_page(request.query_params.get("next")),
    )
    csrf.keep_login_cookie(request, response)
    return response


@router.get("/login", dependencies=[Depends(Authorize(Permission.PUBLIC))])
def login_page(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", dependencies=[Depends(Authorize(Permission.PUBLIC))])
def login(
    session: SessionDep,
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next_page: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    outcome = signin.login(session, username, password)
    if isinstance(outcome, signin.Refused):
        # Returned, not raised, like the API: the failure counter and its audit record commit.
        error = "The username or password is wrong, or the account may not sign in here."
        if outcome.retry_at is not None:
            error = (
                "Too many failed sign-ins: the account is locked until "
                f"{local_time(outcome.retry_at, 'UTC', 'time')}."
            )
        return _login_page(request, outcome.status_code, error, username)
    response = RedirectResponse(_next_page(next_page), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.plaintext,
        max_age=int(outcome.ttl.total_seconds()),
        **cookie_options(),
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/")
    return response


@router.post("/logout", dependencies=[Depends(Authorize(Permission.AUTHENTICATED))])
def logout(session: SessionDep, principal: CurrentPrincipal) -> Response:
    service.sign_out(session, principal.token_id)
    response = RedirectResponse("/login?reason=signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, **cookie_options())
    return response
