"""A webhook receiver for the tests: an HTTP server in a thread that checks each request's
Standard Webhooks signature, answers as the test scripts it (fail, hang, recover) and keeps what
it took: the ids of the events it answered 2xx for, as a receiver that keeps each event once
would."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# what to do with the n-th request (from 1): an HTTP status, or a callable that blocks (a hang)
# and then returns the status
Script = Callable[[int], int | Callable[[], int]]


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """The Standard Webhooks check, written from its specification."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in headers["webhook-signature"].split(" ")]
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, each) for each in offered)


@dataclass
class Received:
    event_id: str
    answered: int
    body: dict[str, Any]
    signed: bool
    at: float


@dataclass
class Receiver:
    secret: str = ""
    script: Script = lambda n: 200
    requests: list[Received] = field(default_factory=list)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> body, once
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: Any, body: bytes) -> int:
        with self._lock:
            n = len(self.requests) + 1
            self.requests.append(Received("", 0, {}, False, time.monotonic()))
        action = self.script(n)
        answer = action() if callable(action) else action
        event = json.loads(body)
        signed = verify(self.secret, headers, body)
        with self._lock:
            self.requests[n - 1] = Received(
                headers["webhook-id"], answer, event, signed, time.monotonic()
            )
            if 200 <= answer < 300 and signed:
                self.kept.setdefault(headers["webhook-id"], event)
        return answer

    def answering(self) -> int:
        """How many requests are still being answered (a scripted hang, say)."""
        with self._lock:
            return sum(1 for r in self.requests if not r.answered)

    def ids_sent(self) -> list[str]:
        with self._lock:
            return [r.event_id for r in self.requests if r.event_id]


@contextmanager
def serving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status = receiver.handle(self.headers, body)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up (timed out, or died)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        # a request still being answered (the sender timed out on it) is not yet recorded:
        # let it finish, so what the test reads afterwards is what the receiver did
        deadline = time.monotonic() + 10
        while receiver.answering() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.shutdown()
        server.server_close()
