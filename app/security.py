"""HTTP hardening, installed by create_app(): security headers, CORS (closed unless origins are
configured), a request body size limit, and log redaction of anything that looks like a secret.

Pure ASGI middleware (no BaseHTTPMiddleware): they neither buffer responses nor change how
exceptions travel, except the docs pages, whose small HTML is buffered to hash its inline script.
"""

import base64
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.docs import DOCS_PAGES
from app.errors import problem

API_PREFIX = "/api/"

# JSON API: nothing may be loaded, framed or submitted on its behalf.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Anything else served by the app (a future web client's pages and static files): own origin.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# /docs (Swagger UI) and /redoc (app/docs.py) load their code, styles and icon from Vigil itself
# and start with one inline script, allowed by its hash (computed from the page itself). No
# other origin: the pages work offline and nothing is fetched from a third party.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' {script_hashes}; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=63072000; includeSubDomains"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the middleware: the security headers wrap everything (even the 500 handler), then
    CORS, then the size limit, so even a refused preflight or a 413 carries the headers."""
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            allow_credentials=False,  # bearer tokens only; the session cookie stays same-site
            max_age=600,
        )
    # The headers go around Starlette's ServerErrorMiddleware, which add_middleware cannot wrap
    # (it is always outermost), so that a 500 carries them too.
    build_stack = app.build_middleware_stack

    def build_stack_with_headers() -> ASGIApp:
        return SecurityHeaders(build_stack(), docs_paths=DOCS_PAGES)

    app.build_middleware_stack = build_stack_with_headers  # type: ignore[method-assign]
    install_log_redaction()


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https"
        if path in self.docs_paths:
            await self._docs(scope, receive, send, https)
            return
        is_api = path.startswith(API_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                _common(headers, https)
                headers.setdefault("Content-Security-Policy", API_CSP if is_api else PAGE_CSP)
                if is_api:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send, https: bool) -> None:
        start: Message | None = None
        body: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            content = b"".join(body)
            headers = MutableHeaders(scope=start)
            _common(headers, https)
            headers["Content-Security-Policy"] = docs_csp(content)
            await send(start)
            await send({"type": "http.response.body", "body": content, "more_body": False})

        await self.app(scope, receive, buffer)


def docs_csp(html: bytes) -> str:
    hashes = " ".join(f"'{h}'" for h in inline_script_hashes(html))
    return DOCS_CSP.format(script_hashes=hashes).replace("  ", " ")


def inline_script_hashes(html: bytes) -> list[str]:
    return [
        "sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode()
        for script in _INLINE_SCRIPT.findall(html)
    ]


def _common(headers: MutableHeaders, https: bool) -> None:
    for name, value in COMMON_HEADERS.items():
        headers.setdefault(name, value)
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 problem+json: at once when the
    Content-Length says so, and while reading when a body sent without one (chunked) grows
    past it. The body is read here and handed on whole: Vigil's JSON endpoints read it all into
    memory anyway, and this way no handler ever sees a partial body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(scope, receive, send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client has gone; nobody is left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _refuse(
            scope,
            receive,
            send,
            413,
            f"the request body is larger than {self.max_bytes} bytes (VIGIL_MAX_REQUEST_BYTES); "
            "send vital readings in smaller batches",
        )


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    title, slug = {
        400: ("Bad request", "bad-request"),
        413: ("Request too large", "request-too-large"),
    }[status]
    response = problem(status, title, detail, slug, scope["path"])
    response.headers["Connection"] = "close"  # the rest of the body is not read
    await response(scope, receive, send)


# --- logs ---------------------------------------------------------------------------------------

_SECRETS = re.compile(
    r"vgl_[a-z]_[A-Za-z0-9_-]+"  # Vigil tokens, wherever they appear
    r"|(?i:bearer)\s+[^\s\"',]+"  # an Authorization header's value
    r"|(?i:password|passwd|token|access_token|secret)=[^&\s\"']+"  # query-string style
)
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "vigil")


class RedactSecrets(logging.Filter):
    """Replace anything that looks like a token or password in a log line by [redacted].

    Vigil never logs request bodies or headers and never takes a token in a URL; this is the
    net under that rule (a client that puts ?token=... in a URL still leaves no secret in the
    access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The arguments are redacted one by one, not merged into the message: uvicorn's access
        # formatter unpacks them.
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        return True


def _redact_value(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def redact(text: str) -> str:
    return _SECRETS.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    found = match.group(0)
    if "=" in found and not found.startswith("vgl_"):
        return found.split("=", 1)[0] + "=[redacted]"
    if found.lower().startswith("bearer"):
        return "Bearer [redacted]"
    return "[redacted]"


def install_log_redaction(logger_names: Iterable[str] = LOGGERS) -> None:
    """Attach the filter to these loggers and to their handlers (a logger's filters do not see
    records of its children; its handlers do). Idempotent."""
    for name in logger_names:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactSecrets) for f in target.filters):
                target.addFilter(RedactSecrets())
