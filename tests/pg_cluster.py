"""A throwaway PostgreSQL cluster of a test's own (initdb in a temporary folder, a spare port,
its socket in that folder), which the test may stop and start again: for the outage tests, which
must not touch the shared server. Needs the server binaries (/usr/lib/postgresql/*/bin) and,
when run as root, the ``postgres`` OS user to run them as."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_USER = "postgres"


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    bin: Path
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder}"
        )
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: sessions are terminated, the server goes away."""
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A running cluster, stopped and removed afterwards, whatever happened."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser to start PostgreSQL as its own user")
    folder = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, SERVER_USER, SERVER_USER)
        cluster = Cluster(binaries, folder, spare_port())
        cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-N")
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.running():
                cluster._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(cluster.data))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
