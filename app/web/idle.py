"""Automatic sign-out of the web client after ``VIGIL_WEB_IDLE_MINUTES`` without use (shared
tablets). The page signs itself out when nobody has clicked or typed for that long
(static/js/vigil.js); this is the server's side of it, for a page left closed or asleep: a web
request on a sign-in last used longer ago than that revokes it and goes to the sign-in page."""

from fastapi import Request

from app.auth import service
from app.auth.deps import SESSION_COOKIE, resolve_credential
from app.auth.tokens import TokenKind
from app.clock import utcnow
from app.config import get_settings
from app.db import SessionDep
from app.web.errors import IdleSignedOut


def idle_guard(session: SessionDep, request: Request) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return
    found = resolve_credential(session, request, cookie)
    if found is None:
        return
    token, user = found.token, found.user
    last_used = token.last_seen_at or token.created_at
    idle_for = utcnow() - last_used
    if (
        token.kind != TokenKind.SESSION
        or idle_for.total_seconds() < 60 * get_settings().web_idle_minutes
    ):
        return
    # Committed here, before anything else of the request ran: the answer is a redirect that
    # would otherwise roll the sign-out back.
    session.info["actor"] = f"{user.role}:{user.username}"
    service.sign_out(session, token.id)
    session.commit()
    minutes = int(idle_for.total_seconds() // 60)
    raise IdleSignedOut(f"signed out after {minutes} minutes without use; sign in again")
