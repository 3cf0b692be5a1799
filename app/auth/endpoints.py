"""Sign in, sign out, who am I, and a user's own API tokens.

The web client signs in once and is then carried by the ``vigil_session`` cookie (HttpOnly,
SameSite=Strict, Secure outside dev); API clients send the same token as a bearer header.
Tokens travel only in headers and bodies, never in a URL (URLs end up in access logs).
"""

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from app.auth import login as signin
from app.auth import service
from app.auth.deps import SESSION_COOKIE, Authorize, CurrentPrincipal
from app.auth.principal import site_ids_of
from app.auth.schemas import (
    ApiTokenCreate,
    ApiTokenRead,
    IssuedApiTokenRead,
    LoginRequest,
    LoginResult,
    MeRead,
    RevokeRequest,
    UserSummaryRead,
)
from app.checked_input import CheckedRoute
from app.clock import utcnow
from app.config import get_settings
from app.db import SessionDep
from app.errors import BEARER_CHALLENGE, problem
from app.models import AccessToken, User
from app.pagination import Page, PageDep, paginate
from app.permissions import ROLE_PERMISSIONS, Permission, Role

router = APIRouter(prefix="/auth", tags=["auth"], route_class=CheckedRoute)

PUBLIC = [Depends(Authorize(Permission.PUBLIC))]
SIGNED_IN = [Depends(Authorize(Permission.AUTHENTICATED))]


def cookie_options() -> dict[str, Any]:
    return {
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": get_settings().session_cookie_secure,
    }


@router.post(
    "/login",
    response_model=LoginResult,
    dependencies=PUBLIC,
    responses={
        401: {"description": "Wrong username or password"},
        429: {"description": "Locked after repeated failures; see Retry-After"},
    },
)
def login(
    session: SessionDep, data: LoginRequest, request: Request, response: Response
) -> LoginResult | JSONResponse:
    """Sign in with a password: returns a bearer token and sets the session cookie."""
    outcome = signin.login(session, data.username, data.password.get_secret_value())
    if isinstance(outcome, signin.Refused):
        # Returned, not raised: the failure counter and the audit record must be committed.
        refused = problem(
            outcome.status_code,
            "Too many failed sign-ins" if outcome.status_code == 429 else "Sign-in refused",
            outcome.detail,
            "login-locked" if outcome.status_code == 429 else "login-refused",
            request.url.path,
            retry_at=outcome.retry_at.isoformat() if outcome.retry_at else None,
        )
        if outcome.status_code == 401:
            refused.headers["WWW-Authenticate"] = BEARER_CHALLENGE
        if outcome.retry_at is not None:
            wait = (outcome.retry_at - utcnow()).total_seconds()
            refused.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return refused
    user = outcome.user
    response.set_cookie(
        SESSION_COOKIE,
        outcome.plaintext,
        max_age=int(outcome.ttl.total_seconds()),
        **cookie_options(),
    )
    return LoginResult(
        access_token=outcome.plaintext,
        expires_at=outcome.expires_at,
        user=UserSummaryRead(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            site_ids=sorted(site_ids_of(session, user.id)),
        ),
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, dependencies=SIGNED_IN)
def logout(session: SessionDep, principal: CurrentPrincipal, response: Response) -> None:
    """Revoke the token this request came with and clear the session cookie."""
    service.sign_out(session, principal.token_id)
    response.delete_cookie(SESSION_COOKIE, **cookie_options())


@router.get("/me", response_model=MeRead, dependencies=SIGNED_IN)
def me(principal: CurrentPrincipal) -> MeRead:
    """Who this request is signed in as, and what that role may do."""
    return MeRead(
        id=principal.user_id,
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        site_ids=sorted(principal.site_ids),
        permissions=sorted(
            p.value for p, roles in ROLE_PERMISSIONS.items() if principal.role in roles
        ),
        token_id=principal.token_id,
        via_cookie=principal.via_cookie,
    )


@router.post(
    "/tokens",
    response_model=IssuedApiTokenRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=SIGNED_IN,
)
def create_api_token(
    session: SessionDep, principal: CurrentPrincipal, data: ApiTokenCreate
) -> IssuedApiTokenRead:
    """An API token acting as the caller (with the caller's role); the token is shown once."""
    user = session.get_one(User, principal.user_id)  # the caller's own account
    row, plaintext = service.issue_api_token(
        session, user, principal.token_id, data.label, data.ttl_days
    )
    return IssuedApiTokenRead.model_validate(
        {**ApiTokenRead.model_validate(row).model_dump(), "token": plaintext}
    )


@router.get("/tokens", response_model=Page[ApiTokenRead], dependencies=SIGNED_IN)
def list_tokens(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep, live_only: bool = True
) -> dict[str, object]:
    """The caller's own tokens (sign-ins, API tokens), without their secrets."""
    stmt = service.tokens_of(principal.user_id, live_only=live_only)
    items, cursor = paginate(session, stmt, AccessToken.id, page)
    return {"items": items, "next_cursor": cursor}


@router.post("/tokens/{token_id}/revoke", response_model=ApiTokenRead, dependencies=SIGNED_IN)
def revoke_token(
    session: SessionDep, principal: CurrentPrincipal, token_id: uuid.UUID, data: RevokeRequest
) -> AccessToken:
    """Revoke one of the caller's tokens; an admin may revoke anybody's."""
    return service.revoke_as(
        session,
        token_id,
        data.reason,
        user_id=principal.user_id,
        is_admin=principal.role is Role.ADMIN,
    )
