"""The request id: the client's X-Request-ID when it is a sane one, else one made here.

The id goes into every audit record the request writes (``audit_records.request_id``, 64
characters), into the log lines of the request and back to the client in X-Request-ID. A header
a client controls must never make an audited write fail, so an over-long or odd id is replaced,
never refused: the request goes on under a server-made id, and the log says what was received.
"""

import logging
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("vigil.http")

ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LOGGED_CHARACTERS = 100  # of a refused id


def request_id_for(received: str | None) -> str:
    """``received`` if it is 1-64 of A-Z a-z 0-9 . _ : -, else a new id (logged)."""
    if received is not None and ACCEPTED.fullmatch(received):
        return received
    made = uuid.uuid4().hex
    if received is not None:
        shown = received[:LOGGED_CHARACTERS].encode("unicode_escape").decode("ascii")
        log.warning(
            "X-Request-ID of %d characters replaced by %s (an id is 1-64 of A-Z a-z 0-9 . _ : -); "
            "received %s%s",
            len(received),
            made,
            shown,
            "..." if len(received) > LOGGED_CHARACTERS else "",
        )
    return made


class RequestIds:
    """Sets ``request.state.request_id`` and answers it in X-Request-ID (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(Headers(scope=scope).get("x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
