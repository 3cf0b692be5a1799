"""The `vigil` command: argument parsing and printing only; the work happens in the services.

vigil serve [--host H] [--port P] [--reload] [--demo-tablet]
vigil migrate [--check]
vigil protocol validate FILE...
vigil protocol load [FILE...] [--dir DIR]
vigil user create USERNAME --name "Printed Name" --role ROLE [--site CODE ...] [--study CODE]
vigil device create NAME --site CODE [--study CODE]
vigil token revoke ID --reason TEXT
vigil demo [--reset] [--with-tablet/--no-tablet]
vigil tablet [--session-id ID] [--base-url URL] [--interval SECONDS]
vigil rules replay SESSION_ID --protocol-version VERSION [--min-severity S] [--json]
"""

import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

import app.audit.recorder  # noqa: F401 - every change made from the CLI is audited too
from app.config import Settings, get_settings
from app.errors import VigilError
from app.permissions import Role

if TYPE_CHECKING:
    from app.demo.tablet import TabletSetup

log = logging.getLogger("vigil.cli")

CLI_ACTOR = "cli"

cli = typer.Typer(
    name="vigil",
    help="Vigil: session protocol and safety monitoring for psychedelic-assisted therapy trials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # never print locals (passwords) in a traceback
)
protocol_cli = typer.Typer(help="Validate protocol files and load them into the database.")
user_cli = typer.Typer(help="Manage user accounts.")
cli.add_typer(protocol_cli, name="protocol", no_args_is_help=True)
cli.add_typer(user_cli, name="user", no_args_is_help=True)


def main() -> None:
    cli()


# --- helpers ------------------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        _fail(f"configuration: {problems}", code=2)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _client_base_url(host: str, port: int) -> str:
    """The URL a local client uses to reach a server bound to ``host``."""
    if host in {"0.0.0.0", "", "::"}:  # noqa: S104 - a listening address, not a bind
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextmanager
def _database_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit status 1."""
    try:
        yield
    except VigilError as exc:
        _fail(exc.detail)
    except (OperationalError, ProgrammingError) as exc:
        _fail(
            f"database error: {exc.orig or exc}\n"
            f"(database {_shown(_settings().database_url)}; has `vigil migrate` been run?)"
        )


# --- serve --------------------------------------------------------------------------------------


@cli.command()
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

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s:     %(name)s - %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per tablet post
    stop = threading.Event()
    if demo_tablet:
        threading.Thread(
            target=_run_demo_tablet,
            args=(_client_base_url(host, port), tablet_interval, stop),
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
            log_level=settings.log_level,
        )
    finally:
        stop.set()


def _run_demo_tablet(base_url: str, interval_seconds: float, stop: threading.Event) -> None:
    import httpx

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
        setup = _demo_tablet_setup()
        sent = tablet.run(
            base_url, setup.token, setup.session_id, setup.dosed_at, interval_seconds, stop
        )
    except Exception as exc:  # the server keeps serving without its simulated tablet
        log.warning("demo tablet stopped: %s", exc)
        return
    log.info("demo tablet stopped after sending %d readings", sent)


# --- migrate ------------------------------------------------------------------------------------


@cli.command()
def migrate(
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Then fail if the models and the migrations disagree (alembic check)"
        ),
    ] = False,
) -> None:
    """Bring the database (VIGIL_DATABASE_URL) to the latest schema."""
    from alembic.util.exc import AutogenerateDiffsDetected

    from app import migrations

    url = _settings().database_url
    with _database_errors():
        migrations.upgrade(url)
        typer.echo(f"migrated {_shown(url)} to head")
        if check:
            try:
                migrations.check(url)
            except AutogenerateDiffsDetected as exc:
                _fail(f"the models and the migrations disagree: {exc}")
            typer.echo("check: the models match the migrations")


# --- protocol -----------------------------------------------------------------------------------


@protocol_cli.command("validate")
def protocol_validate(
    files: Annotated[list[Path], typer.Argument(help="Protocol files (YAML)", show_default=False)],
) -> None:
    """Check protocol files without a database; print every issue of every bad file."""
    from app.protocols.loader import ProtocolError, load_protocol_file

    invalid = 0
    for path in files:
        try:
            loaded = load_protocol_file(path)
        except ProtocolError as exc:
            invalid += 1
            for issue in exc.issues:
                typer.echo(str(issue), err=True)
            continue
        info = loaded.protocol.protocol
        typer.echo(f"ok {path} {info.id} v{info.version} sha256 {loaded.sha256}")
    if invalid:
        _fail(f"{invalid} of {len(files)} protocol file(s) invalid")


@protocol_cli.command("load")
def protocol_load(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Protocol files (YAML)", show_default=False)
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Load every *.yaml in this directory (default: VIGIL_PROTOCOLS_DIR when no "
            "FILE is given)",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Store protocol versions in the database; the same file again is a no-op.

    Every file is validated first: if any is invalid, nothing is stored.
    """
    from app.db import unit_of_work
    from app.protocols.loader import LoadedProtocol, ProtocolError, load_protocol_file
    from app.protocols.service import store

    settings = _settings()
    paths = list(files or [])
    if directory is not None or not paths:
        directory = directory or settings.protocols_dir
        found = sorted(directory.glob("*.yaml"))
        if not found:
            _fail(f"no protocol files (*.yaml) in {directory}")
        paths += found

    loaded: list[LoadedProtocol] = []
    invalid = 0
    for path in paths:
        try:
            loaded.append(load_protocol_file(path))
        except ProtocolError as exc:
            invalid += 1
            for issue in exc.issues:
                typer.echo(str(issue), err=True)
    if invalid:
        _fail(f"nothing loaded: {invalid} of {len(paths)} protocol file(s) invalid")

    with _database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        results = [(protocol, *store(session, protocol)) for protocol in loaded]
    for protocol, version, created in results:
        what = (
            f"{version.protocol_key} v{version.version_label} sequence {version.sequence} "
            f"sha256 {version.sha256}"
        )
        if created:
            typer.echo(f"loaded {what} from {protocol.source}")
        else:
            typer.echo(f"unchanged {what} (already loaded)")


# --- user ---------------------------------------------------------------------------------------


@user_cli.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name", show_default=False)],
    name: Annotated[
        str, typer.Option("--name", help="Printed name (shown on signatures)", show_default=False)
    ],
    role: Annotated[
        Role, typer.Option("--role", help="Role", case_sensitive=False, show_default=False)
    ],
    site: Annotated[
        list[str] | None,
        typer.Option("--site", help="Code of a site the user works at (repeat for several)"),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Code of the study the --site codes belong to"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin, no prompt")
    ] = False,
) -> None:
    """Create a user; prompts for the password twice (hidden) unless --password-stdin."""
    from app.db import unit_of_work
    from app.users.service import create_user

    site_codes = site or []
    if study is not None and not site_codes:
        _fail("--study only says which study the --site codes belong to; give --site too")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("no password on stdin")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    with _database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        site_ids = _site_ids(session, site_codes, study)
        user = create_user(
            session,
            username=username,
            display_name=name,
            role=role,
            password=password,
            site_ids=site_ids,
        )
    sites = f" at sites {', '.join(site_codes)}" if site_codes else ""
    typer.echo(f"created user {user.username} ({user.role}){sites} id {user.id}")


def _site_ids(session: Session, site_codes: list[str], study_code: str | None) -> list[uuid.UUID]:
    """Site codes are unique within a study: resolve them, asking for --study when ambiguous."""
    from app.models import Site, Study

    ids: list[uuid.UUID] = []
    for code in site_codes:
        query = select(Site.id, Study.code).join(Study, Site.study_id == Study.id)
        query = query.where(Site.code == code)
        if study_code is not None:
            query = query.where(Study.code == study_code)
        matches = session.execute(query).all()
        if not matches:
            in_study = f" in study {study_code}" if study_code else ""
            _fail(f"no site {code!r}{in_study}")
        if len(matches) > 1:
            studies = ", ".join(sorted(study for _, study in matches))
            _fail(f"site code {code!r} exists in studies {studies}; say which with --study")
        ids.append(matches[0][0])
    return ids


# --- demo ---------------------------------------------------------------------------------------


@cli.command()
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

    settings = _settings()
    if reset:
        from app import migrations

        url = make_url(settings.database_url)
        if url.get_backend_name() != "sqlite" or url.database in {None, "", ":memory:"}:
            _fail(
                f"--reset deletes an embedded SQLite database file; refusing for "
                f"{_shown(settings.database_url)}"
            )
        database = Path(str(url.database))
        dispose_engines()
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
        typer.echo(f"deleted {database}")
        with _database_errors():
            migrations.upgrade(settings.database_url)  # the seeder loads the protocols

    from app.demo.seed import seed_demo

    with _database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        try:
            summary = seed_demo(session)
        except RuntimeError as exc:  # e.g. refused outside VIGIL_ENVIRONMENT=dev/test
            _fail(str(exc))
    for line in summary.lines():
        typer.echo(line)
    if with_tablet:
        _run_tablet(base_url or _client_base_url(settings.host, settings.port), None, None, 5.0)


# --- tablet -------------------------------------------------------------------------------------


@cli.command()
def tablet(
    token: Annotated[
        str | None,
        typer.Option(
            envvar="VIGIL_TABLET_TOKEN",
            help="The device token to post with (default: a fresh token for the demo tablet)",
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
    settings = _settings()
    if token and not session_id:
        _fail("--token needs --session-id")
    _run_tablet(
        base_url or _client_base_url(settings.host, settings.port), token, session_id, interval
    )


def _demo_tablet_setup() -> "TabletSetup":
    """A fresh device token for the demo tablet and the live session at its site (the old
    tokens are revoked, audited with the actor cli)."""
    from app.db import unit_of_work
    from app.demo.tablet import prepare_demo_tablet

    with unit_of_work(actor=CLI_ACTOR) as session:
        return prepare_demo_tablet(session)


def _run_tablet(
    base_url: str, token: str | None, session_id: str | None, interval_seconds: float
) -> None:
    import httpx

    from app.demo import tablet as simulated

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if token and session_id:
            setup = simulated.TabletSetup(token, session_id, None)
        else:
            with _database_errors():
                setup = _demo_tablet_setup()
        sent = simulated.run(
            base_url, setup.token, setup.session_id, setup.dosed_at, interval_seconds
        )
    except KeyboardInterrupt:
        typer.echo("tablet stopped")
        return
    except (RuntimeError, httpx.HTTPError) as exc:
        _fail(f"tablet: {exc} (is `vigil serve` running at {base_url}?)")
    typer.echo(f"tablet stopped after sending {sent} readings")


# --- audit --------------------------------------------------------------------------------------

audit_cli = typer.Typer(help="Check the audit trail.")
cli.add_typer(audit_cli, name="audit", no_args_is_help=True)


@audit_cli.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:HASH",
            help="A head printed by an earlier run and kept outside the database: fail if the "
            "chain no longer holds that record with that hash (a removed or rewritten end)",
        ),
    ] = None,
) -> None:
    """Walk the audit hash chain (read-only); exit 1 naming the first broken record."""
    from app.audit.verify import Head, verify_database

    try:
        expected = Head.parse(expect_head) if expect_head is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expect-head") from None
    with _database_errors():
        result = verify_database(_settings().database_url, expected)
    if result.broken is not None:
        typer.echo(f"audit trail BROKEN: {result.broken}")
        typer.echo(f"{result.records_checked} records verified before it, up to {result.head}")
        raise typer.Exit(1)
    typer.echo(f"audit trail intact: {result.records_checked} records, head {result.head}")


# --- device, token ------------------------------------------------------------------------------

device_cli = typer.Typer(help="Register bedside devices (tablets) and issue their tokens.")
token_cli = typer.Typer(help="Revoke access tokens (sign-ins, API and device tokens).")
cli.add_typer(device_cli, name="device", no_args_is_help=True)
cli.add_typer(token_cli, name="token", no_args_is_help=True)


@device_cli.command("create")
def device_create(
    name: Annotated[
        str, typer.Argument(help="Unique name of the tablet, e.g. tablet-s01-3", show_default=False)
    ],
    site: Annotated[
        str, typer.Option("--site", help="Code of the site the device works at", show_default=False)
    ],
    study: Annotated[
        str | None,
        typer.Option("--study", help="Code of the study the --site code belongs to"),
    ] = None,
) -> None:
    """Register a device at one site and print its token, this once (only a hash is kept)."""
    from pydantic import TypeAdapter

    from app.db import unit_of_work
    from app.users.schemas import DeviceName
    from app.users.service import create_device

    try:
        name = TypeAdapter(DeviceName).validate_python(name)
    except ValidationError:
        _fail(f"device name {name!r}: use 2-64 letters, digits, '.', '_' or '-'")
    with _database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        [site_id] = _site_ids(session, [site], study)
        device, token = create_device(session, name, site_id)
    typer.echo(f"created device {device.username} at site {site} id {device.id}")
    typer.echo("its token follows; it is shown this once, so put it on the device now:", err=True)
    typer.echo(token)


@token_cli.command("revoke")
def token_revoke(
    token_id: Annotated[
        uuid.UUID, typer.Argument(help="Id of the token (not the token itself)", show_default=False)
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is revoked (audited)", show_default=False)
    ],
) -> None:
    """Revoke a token now; requests made with it are refused from then on."""
    from app.auth.service import get_token, revoke
    from app.db import unit_of_work
    from app.models import User

    reason = reason.strip()
    if len(reason) < 3:
        _fail("give a reason of 3 characters or more")
    with _database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        token = revoke(session, get_token(session, token_id), reason)
        owner = session.get(User, token.user_id)
        username = owner.username if owner else "?"
    label = f" ({token.label})" if token.label else ""
    typer.echo(f"revoked {token.kind} token {token.id}{label} of {username}")


# --- rules --------------------------------------------------------------------------------------

rules_cli = typer.Typer(help="See what the rules engine finds.")
cli.add_typer(rules_cli, name="rules", no_args_is_help=True)


@rules_cli.command("replay")
def rules_replay(
    session_id: Annotated[
        uuid.UUID,
        typer.Argument(help="Id of a finished (ended) dosing session", show_default=False),
    ],
    protocol_version: Annotated[
        str,
        typer.Option(
            "--protocol-version",
            help="The version to replay under: its id, a sha256 prefix (6+ hex digits), a version "
            "label of the session's protocol, or 'latest'",
            show_default=False,
        ),
    ],
    min_severity: Annotated[
        Literal["info", "warning", "critical"] | None,
        typer.Option("--min-severity", help="Leave out findings below this severity"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the API's JSON instead of the table")
    ] = False,
) -> None:
    """Replay a finished session under another protocol version and compare the findings with
    the version it ran under (+ only under the target, - only under its own, = both). Read-only;
    the replay is audited."""
    from app import clock
    from app.db import unit_of_work
    from app.replay import service as replay
    from app.replay.table import render

    with _database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        dosing_session = replay.get_dosing_session(session, session_id)
        target = replay.find_version(session, dosing_session, protocol_version)
        report = replay.replay_session(
            session,
            dosing_session,
            target,
            now=clock.utcnow(),
            min_severity=min_severity,
        )
    typer.echo(report.model_dump_json(indent=2) if as_json else render(report))


if __name__ == "__main__":
    main()
