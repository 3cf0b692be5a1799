"""Protection of the web client's form posts against cross-site request forgery.

A plain HTML form cannot send the API's ``x-vigil-csrf`` header, so every form carries a token
instead: an HMAC of the session cookie under the server's secret key. It is the same for the
whole sign-in (one per session), changes with every sign-in, is never stored, and cannot be
computed by another site, which can neither read the cookie (HttpOnly) nor the page. The sign-in
form, before there is a session, is bound the same way to a random pre-session cookie."""

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from app.auth.deps import SESSION_COOKIE
from app.config import get_settings
from app.errors import Forbidden

FIELD = "csrf_token"
HEADER = "x-csrf-token"  # what htmx sends (static/js/vigil.js), for requests made by script
LOGIN_COOKIE = "vigil_login_csrf"
LOGIN_PATH = "/login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _mac(purpose: str, value: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def token_for(request: Request) -> str:
    """The token this request's forms must carry ('' when there is nothing to bind it to): on
    the sign-in page bound to the pre-session cookie, everywhere else to the session cookie."""
    if request.url.path == LOGIN_PATH:
        bound = getattr(request.state, "login_csrf", None) or request.cookies.get(LOGIN_COOKIE)
        return _mac("login", bound) if bound else ""
    session_cookie = request.cookies.get(SESSION_COOKIE)
    return _mac("session", session_cookie) if session_cookie else ""


def login_token(request: Request) -> str:
    """The sign-in form's token, minting the pre-session value it is bound to if missing (then
    :func:`keep_login_cookie` must set it on the response)."""
    if not request.cookies.get(LOGIN_COOKIE) and not getattr(request.state, "login_csrf", None):
        request.state.login_csrf = secrets.token_urlsafe(24)
    return token_for(request)


def keep_login_cookie(request: Request, response: Response) -> None:
    minted = getattr(request.state, "login_csrf", None)
    if minted and not request.cookies.get(LOGIN_COOKIE):
        response.set_cookie(
            LOGIN_COOKIE,
            minted,
            path="/",
            httponly=True,
            samesite="strict",
            secure=get_settings().session_cookie_secure,
        )


async def require_token(request: Request) -> None:
    """The web router's guard: a change (any method but GET, HEAD, OPTIONS) must carry the token
    of its session, in the form or in the ``x-csrf-token`` header, else 403."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(FIELD)
        sent = value if isinstance(value, str) else None
    expected = token_for(request)
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise Forbidden(
            "this form is out of date or was not sent from Vigil's own page (its security token "
            "is missing or wrong); reload the page and send it again"
        )
    request.state.csrf_verified = True
