"""One log line per request: method, path, status, duration in ms and request id.

The route's path template only (`/api/v1/participants/{participant_id}`), never the path as
sent nor its query string: a client can put anything in a path or a query (a participant's
name, a username), and bodies and headers are never logged either. The request id ties the line
to the audit records, which name the records touched. A path that matches no route is logged as
`-`. Pure ASGI, just inside RequestIds (the id is
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
                "path": route_template(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "request_id": scope.get("state", {}).get("request_id"),
            }
            log.info(
                "%(method)s %(path)s %(status)d %(duration_ms).1f ms (request id %(request_id)s)",
                fields,
                extra=fields,
            )


def route_template(scope: Scope) -> str:
    """The path with each path parameter's value replaced by its name."""
    if scope.get("route") is None:
        return "-"
    names = {str(value): name for name, value in scope.get("path_params", {}).items()}
    return "/".join(
        f"{{{names[part]}}}" if part in names else part for part in scope["path"].split("/")
    )
