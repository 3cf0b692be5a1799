"""`vigil rules replay`: what another protocol version would have found in a finished session."""

import uuid
from typing import Annotated, Literal

import typer

from app.cli.common import CLI_ACTOR, database_errors

rules_cli = typer.Typer(help="See what the rules engine finds.")


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

    with database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
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
