"""The FastAPI dependencies every route uses: who is calling (resolved once per request from a
bearer token or the session cookie) and the route's declared policy (:class:`Authorize`)."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.auth import tokens
from app.auth.principal import Principal, site_ids_of
from app.clock import utcnow
from app.db import SessionDep
from app.errors import Forbidden, VigilError
from app.models import AccessToken
from app.permissions import Permission, Role, allows

SESSION_COOKIE = "vigil_session"
CSRF_HEADER = "x-vigil-csrf"


class Unauthenticated(VigilError):
    status_code = 401
    title = "Unauthenticated"
    slug = "unauthenticated"


def credential(request: Request) -> tuple[str, bool] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else None


# A token's last_seen_at is kept to the minute. Writing it on every request made every request of
# one token (a bedside tablet posting for several sessions) wait for that token's row until the
# request before it had committed.
LAST_SEEN_PRECISION = timedelta(minutes=1)


def _seen(token: AccessToken, now: datetime, address: str | None) -> None:
    stale = token.last_seen_at is None or now - token.last_seen_at >= LAST_SEEN_PRECISION
    if stale or token.last_seen_address != address:
        token.last_seen_at, token.last_seen_address = now, address


def authenticate(session: Session, request: Request) -> Principal:
    """The caller of this request (resolved once, then kept on request.state)."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    found_credential = credential(request)
    if found_credential is None:
        raise Unauthenticated("sign in first: send 'Authorization: Bearer <token>'")
    plaintext, via_cookie = found_credential
    found = tokens.resolve(session, plaintext)
    if found is None:
        raise Unauthenticated("the token is unknown, expired or revoked; sign in again")
    token, user = found
    unsafe = request.method not in {"GET", "HEAD", "OPTIONS"}
    if via_cookie and unsafe and request.headers.get(CSRF_HEADER) != "1":
        raise Forbidden(f"a cookie-authenticated change needs the header {CSRF_HEADER}: 1")
    _seen(token, utcnow(), request.client.host if request.client else None)
    principal = Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        site_ids=frozenset(site_ids_of(session, user.id)),
        token_id=token.id,
        via_cookie=via_cookie,
    )
    session.info["actor"] = principal.actor
    request.state.principal = principal
    return principal


def current_principal(session: SessionDep, request: Request) -> Principal:
    return authenticate(session, request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class Policy:
    """A route's declared policy: ``dependencies=[Depends(Authorize(Permission.X))]`` on the
    decorator.

    The permission is kept on the dependency so the permission-matrix test can read every
    route's declared policy; a route without one fails that test.
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission


class Anyone(Policy):
    """No credentials and no database session: the health probes, which must answer at once
    however many requests wait for a turn at the database (app/db.py)."""

    def __init__(self) -> None:
        super().__init__(Permission.PUBLIC)

    def __call__(self) -> None:
        return None


class Authorize(Policy):
    """The caller's credentials (in the request's session), checked against the permission."""

    def __call__(self, session: SessionDep, request: Request) -> Principal | None:
        if self.permission is Permission.PUBLIC:
            return None
        principal = authenticate(session, request)
        if not allows(principal.role, self.permission):
            raise Forbidden(f"a {principal.role.value} may not do this ({self.permission.value})")
        return principal
