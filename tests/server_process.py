"""Vigil served by a uvicorn process of its own, which a test can kill with SIGKILL and start
again on the same port: for the claims about what survives a crash. (tests/live_server.py serves
in a thread of the test process, which cannot be killed alone.)"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.config import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``start()`` serves ``database_url`` (already migrated) on a fixed free port until
    ``kill()``; ``base`` is the API's URL. Settings are VIGIL_* variables without the prefix.
    With ``workers`` above 1, or ``serve``, through `vigil serve --workers` (as deployed)."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 1,
        serve: bool = False,
        **settings: str,
    ) -> None:
        self.workers = workers
        self.serve = serve
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.root}/api/v1"
        self.log_path = log_path
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
            "VIGIL_ENVIRONMENT": "test",
            "VIGIL_DATABASE_URL": database_url,
            "VIGIL_SCHEDULER_INTERVAL_SECONDS": "0",
            **{f"VIGIL_{name.upper()}": value for name, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> None:
        assert self.process is None, "already serving"
        if self.workers == 1 and not self.serve:
            command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
            command += ["--port", str(self.port), "--log-level", "warning"]
        else:  # as deployed: `vigil serve --workers N`, logging as VIGIL_LOG_LEVEL says
            command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
            command += ["--port", str(self.port), "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.root}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight is cut off."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None
