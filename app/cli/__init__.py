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
vigil audit verify [--expect-head SEQ:sha256:HASH] [--file EXPORT]
vigil audit export --out FILE [--reveal KIND ...] [--odm]
vigil export --study CODE --out DIR|FILE.zip
vigil reports --study CODE --out DIR
vigil rules replay SESSION_ID --protocol-version VERSION [--min-severity S] [--json]
"""

import typer

from app import listeners
from app.cli.audit import audit_cli
from app.cli.demo import demo, tablet
from app.cli.export import export, reports
from app.cli.migrate import migrate
from app.cli.protocols import protocol_cli
from app.cli.rules import rules_cli
from app.cli.serve import serve
from app.cli.users import device_cli, token_cli, user_cli

cli = typer.Typer(
    name="vigil",
    help="Vigil: session protocol and safety monitoring for psychedelic-assisted therapy trials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # never print locals (passwords) in a traceback
)
for command in (serve, migrate, demo, tablet, export, reports):
    cli.command()(command)
for group, name in (
    (protocol_cli, "protocol"),
    (user_cli, "user"),
    (audit_cli, "audit"),
    (device_cli, "device"),
    (token_cli, "token"),
    (rules_cli, "rules"),
):
    cli.add_typer(group, name=name, no_args_is_help=True)


def main() -> None:
    listeners.install()  # every change made from the CLI is audited and announced too
    cli()
