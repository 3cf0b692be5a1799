"""`vigil demo` (seed the demo study) and `vigil tablet` (a simulated bedside tablet)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.engine import make_url

from app.cli.common import CLI_ACTOR, client_base_url, database_errors, fail, settings, shown

if TYPE_CHECKING:
    from app.demo.tablet import TabletSetup


def demo(
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Delete the embedded SQLite database file first and migrate a new one "
            "(refused for any other database)",
        ),
    ] = False,
    with_tablet: Annotated[
        bool,
        typer.Option(
            "--with-tablet/--no-tablet",
            help="After seeding, run the simulated tablet against the server at --base-url "
            "until Ctrl-C (the server must already be running)",
        ),
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option(help="Server the tablet posts to (default: from VIGIL_HOST, VIGIL_PORT)"),
    ] = None,
) -> None:
    """Seed a demo study (safe to run again: the seeder is idempotent) and print a summary."""
    from app.db import dispose_engines, unit_of_work

    config = settings()
    if reset:
        from app import migrations

        url = make_url(config.database_url)
        if url.get_backend_name() != "sqlite" or url.database in {None, "", ":memory:"}:
            fail(
                f"--reset deletes an embedded SQLite database file; refusing for "
                f"{shown(config.database_url)}"
            )
        database = Path(str(url.database))
        dispose_engines()
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
        typer.echo(f"deleted {database}")
        with database_errors():
            migrations.upgrade(config.database_url)  # the seeder loads the protocols

    from app.demo.seed import seed_demo

    with database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        try:
            summary = seed_demo(session)
        except RuntimeError as exc:  # e.g. refused outside VIGIL_ENVIRONMENT=dev/test
            fail(str(exc))
    for line in summary.lines():
        typer.echo(line)
    if with_tablet:
        _run_tablet(base_url or client_base_url(config.host, config.port), None, None, 5.0)


def tablet(
    token: Annotated[
        str | None,
        typer.Option(
            envvar="VIGIL_TABLET_TOKEN",
            help="The device token to post with (default: a token of the demo tablet's own, "
            "revoked when it stops)",
        ),
    ] = None,
    session_id: Annotated[
        str | None,
        typer.Option(
            "--session-id",
            help="Dosing session to post to (default: the one in progress at the demo tablet's "
            "site); required with --token",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Server to post to (default: from VIGIL_HOST, VIGIL_PORT)"),
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between posts", min=0.1)] = 5.0,
) -> None:
    """Run a simulated bedside tablet that posts vitals into a dosing session until Ctrl-C."""
    config = settings()
    if token and not session_id:
        fail("--token needs --session-id")
    _run_tablet(base_url or client_base_url(config.host, config.port), token, session_id, interval)


@contextmanager
def demo_tablet() -> Iterator["TabletSetup"]:
    """The demo tablet for one run: a device token of its own and the live session at its
    site; the token is revoked when the run ends (both audited with the actor cli)."""
    from app.db import unit_of_work
    from app.demo.tablet import prepare_demo_tablet, retire_demo_token

    with unit_of_work(actor=CLI_ACTOR) as session:
        setup = prepare_demo_tablet(session)
    try:
        yield setup
    finally:
        if setup.token_id is not None:
            with unit_of_work(actor=CLI_ACTOR) as session:
                retire_demo_token(session, setup.token_id)


def _run_tablet(
    base_url: str, token: str | None, session_id: str | None, interval_seconds: float
) -> None:
    import httpx

    from app.demo import tablet as simulated

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if token and session_id:
            sent = simulated.run(base_url, token, session_id, None, interval_seconds)
        else:
            with database_errors(), demo_tablet() as setup:
                sent = simulated.run(
                    base_url, setup.token, setup.session_id, setup.dosed_at, interval_seconds
                )
    except KeyboardInterrupt:
        typer.echo("tablet stopped")
        return
    except simulated.TabletRefused as exc:
        fail(f"tablet: {exc}")
    except (RuntimeError, httpx.HTTPError) as exc:
        fail(f"tablet: {exc} (is `vigil serve` running at {base_url}?)")
    typer.echo(f"tablet stopped after sending {sent} readings")
