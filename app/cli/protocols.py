"""`vigil protocol validate` and `vigil protocol load`."""

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import CLI_ACTOR, database_errors, fail, settings

protocol_cli = typer.Typer(help="Validate protocol files and load them into the database.")


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
        fail(f"{invalid} of {len(files)} protocol file(s) invalid")


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

    paths = list(files or [])
    if directory is not None or not paths:
        directory = directory or settings().protocols_dir
        found = sorted(directory.glob("*.yaml"))
        if not found:
            fail(f"no protocol files (*.yaml) in {directory}")
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
        fail(f"nothing loaded: {invalid} of {len(paths)} protocol file(s) invalid")

    with database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
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
