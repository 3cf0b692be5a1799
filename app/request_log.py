"""One log line per request: method, path, status, duration in ms and request id.

The path only: a query string's values can name people (a search for a participant, a
username), and bodies and headers are never logged. Pure ASGI, just inside RequestIds (the id is
set) and around everything else, so refusals and 500s are logged like any other answer.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("vigil.http")


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers an error that escapes before the answer starts

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "request_id": scope.get("state", {}).get("request_id"),
            }
            log.info(
                "%(method)s %(path)s %(status)d %(duration_ms).1f ms (request id %(request_id)s)",
                fields,
                extra=fields,
            )
