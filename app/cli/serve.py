"""`vigil serve`: the API under uvicorn, with the simulated demo tablet beside it if asked."""

import logging
import threading
import time
from typing import Annotated

import typer

from app.cli.common import client_base_url, settings

log = logging.getLogger("vigil.cli")


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: VIGIL_HOST)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: VIGIL_PORT)")
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart when the code changes (dev)")] = False,
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

    config = settings()
    host = host or config.host
    port = port or config.port
    logging.basicConfig(
        level=config.log_level.upper(), format="%(levelname)s:     %(name)s - %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per tablet post
    stop = threading.Event()
    if demo_tablet:
        threading.Thread(
            target=_run_demo_tablet,
            args=(client_base_url(host, port), tablet_interval, stop),
            name="demo-tablet",
            daemon=True,
        ).start()
    try:
        uvicorn.run(
            "app.main:app",
            host=host,
            port=port,
            reload=reload,
            reload_dirs=[str(ROOT / "app")] if reload else None,
            log_level=config.log_level,
        )
    finally:
        stop.set()


def _run_demo_tablet(base_url: str, interval_seconds: float, stop: threading.Event) -> None:
    import httpx

    from app.cli.demo import demo_tablet_setup
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
        setup = demo_tablet_setup()
        sent = tablet.run(
            base_url, setup.token, setup.session_id, setup.dosed_at, interval_seconds, stop
        )
    except Exception as exc:  # the server keeps serving without its simulated tablet
        log.warning("demo tablet stopped: %s", exc)
        return
    log.info("demo tablet stopped after sending %d readings", sent)
