"""`vigil serve`: the API under uvicorn, with the simulated demo tablet beside it if asked.

Before anything starts it checks that the port is free and that the database's schema is one
this code can serve, so a second `make run` or an unmigrated database fails at once, saying what
to do, and changes nothing.

SIGTERM (or Ctrl-C) stops it gracefully: uvicorn stops accepting connections, lets the requests
in flight finish (for up to GRACEFUL_SHUTDOWN_SECONDS), the live alert streams end cleanly
(app/alerts/stream.py), and the command exits 0. With --workers N the workers' metrics are
summed through a temporary PROMETHEUS_MULTIPROC_DIR (app/metrics.py), removed at exit.
"""

import contextlib
import errno
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from app import logs
from app.cli.common import client_base_url, fail, settings, shown

log = logging.getLogger("vigil.cli")

# Requests still unfinished this long after SIGTERM are cut off: under the 30 s that Docker and
# Kubernetes wait before they send SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 25


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: VIGIL_HOST)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: VIGIL_PORT)")
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart when the code changes (dev)")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes (uvicorn's): each serves requests; one of them, elected "
            "through the database, runs the scheduler",
            min=1,
        ),
    ] = 1,
    demo_tablet: Annotated[
        bool,
        typer.Option(
            "--demo-tablet",
            help="Once the server answers, post simulated vitals into the demo's live dosing "
            "session from a background thread (see `vigil tablet`)",
        ),
    ] = False,
    tablet_interval: Annotated[
        float, typer.Option(help="Seconds between the demo tablet's posts", min=0.1)
    ] = 5.0,
) -> None:
    """Serve the API (app.main:app) with uvicorn."""
    import uvicorn

    from app.config import ROOT

    if reload and workers > 1:
        fail("--reload serves one process: give it without --workers, or --workers without it")
    config = settings()
    host = host or config.host
    port = port or config.port
    _require_free_port(host, port)
    log_config = logs.configure(config)
    _require_servable_schema(config.database_url)
    stop = threading.Event()
    tablet = threading.Thread(
        target=_run_demo_tablet,
        args=(client_base_url(host, port), tablet_interval, stop),
        name="demo-tablet",
        daemon=True,
    )
    if demo_tablet:
        tablet.start()
    _exit_zero_after_graceful_shutdown()
    try:
        with _metrics_shared_by(workers):
            uvicorn.run(
                "app.main:app",
                host=host,
                port=port,
                reload=reload,
                workers=workers,
                reload_dirs=[str(ROOT / "app")] if reload else None,
                log_level=config.log_level,
                log_config=log_config,
                access_log=False,  # app/request_log.py logs every request, without its query
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
    finally:
        stop.set()
        if tablet.is_alive():
            tablet.join(15)  # it revokes its token as it stops


def _exit_zero_after_graceful_shutdown() -> None:
    """uvicorn, serving in this process, raises the signal that stopped it again once it has
    shut down, to the handler that was there before it; Python's default for SIGTERM would
    end the process with "killed by SIGTERM" (143) after a clean stop. A stop asked for and
    carried out exits 0."""
    if threading.current_thread() is not threading.main_thread():
        return
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda _signal, _frame: None)


@contextlib.contextmanager
def _metrics_shared_by(workers: int) -> Iterator[None]:
    """With several workers, a fresh PROMETHEUS_MULTIPROC_DIR for them to write their metrics
    to (set before they start, so each imports prometheus-client in multiprocess mode), whose
    live gauges of a worker that died are dropped (every 2 s), removed at the end."""
    if workers == 1:
        yield
        return
    directory = tempfile.mkdtemp(prefix="vigil-metrics-")
    previous = os.environ.get(METRICS_DIR)
    os.environ[METRICS_DIR] = directory
    stop = threading.Event()
    reaper = threading.Thread(
        target=_drop_dead_workers, args=(Path(directory), stop), name="metrics-reaper", daemon=True
    )
    reaper.start()
    try:
        yield
    finally:
        stop.set()
        reaper.join(5)
        if previous is None:
            os.environ.pop(METRICS_DIR, None)
        else:
            os.environ[METRICS_DIR] = previous
        shutil.rmtree(directory, ignore_errors=True)


METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


def _drop_dead_workers(directory: Path, stop: threading.Event) -> None:
    from prometheus_client import multiprocess

    while not stop.wait(2):
        pids = {int(m[1]) for p in directory.iterdir() if (m := _LIVE_GAUGE_FILE.fullmatch(p.name))}
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                multiprocess.mark_process_dead(pid, str(directory))
            except PermissionError:
                pass  # alive, under another user


def _run_demo_tablet(base_url: str, interval_seconds: float, stop: threading.Event) -> None:
    import httpx

    from app.cli.demo import demo_tablet
    from app.demo import tablet

    deadline = time.monotonic() + 60
    while not stop.is_set():
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            log.warning("demo tablet not started: %s was not ready within 60 s", base_url)
            return
        stop.wait(0.25)
    if stop.is_set():
        return
    try:
        with demo_tablet() as setup:
            sent = tablet.run(
                base_url, setup.token, setup.session_id, setup.dosed_at, interval_seconds, stop
            )
    except Exception as exc:  # the server keeps serving without its simulated tablet
        log.warning("demo tablet stopped: %s", exc)
        return
    log.info("demo tablet stopped after sending %d readings", sent)


def _require_free_port(host: str, port: int) -> None:
    """Bind the address as uvicorn will (then let go of it), to refuse a taken port at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(
                    f"port {port} on {host} is already in use, perhaps by another `vigil "
                    "serve` (an earlier `make run`); stop that one, or serve on another port "
                    "with --port or VIGIL_PORT (e.g. `VIGIL_PORT=8001 make run`)"
                )
            fail(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose the address with "
                "--host or VIGIL_HOST and the port with --port or VIGIL_PORT"
            )


def _require_servable_schema(url: str) -> None:
    """Refuse a database without this code's schema (unmigrated, or behind); one migrated by a
    newer release is served, as /readyz says. A database that does not answer yet is not
    refused: the server starts and /readyz says when it is ready."""
    from app.db import make_engine
    from app.migrations import schema_problem, schema_state
    from app.outages import is_outage

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            problem = schema_problem(*schema_state(connection))
    except SQLAlchemyError as exc:
        if not is_outage(exc):
            fail(f"database {shown(url)}: {getattr(exc, 'orig', None) or exc}")
        log.warning("database %s is not answering yet; /readyz will say when it is", shown(url))
        return
    finally:
        engine.dispose()
    if problem is not None:
        fail(f"not serving {shown(url)}: {problem}")
