"""`vigil audit verify`: walk the audit hash chain."""

from typing import Annotated

import typer

from app.cli.common import database_errors, settings

audit_cli = typer.Typer(help="Check the audit trail.")


@audit_cli.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:sha256:HASH",
            help="A head printed by an earlier run and kept outside the database: fail if the "
            "chain no longer holds that record with that hash (a removed or rewritten end). "
            "Not the API's head.keyed_digest (hmac-sha256:...)",
        ),
    ] = None,
) -> None:
    """Walk the audit hash chain (read-only); exit 1 naming the first broken record."""
    from app.audit.verify import API_DIGEST_GIVEN, Head, keyed_digest, verify_database

    try:
        expected = Head.parse(expect_head) if expect_head is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expect-head") from None
    config = settings()
    with database_errors():
        result = verify_database(config.database_url, expected)
    found = result.found_at_expected
    # A bare SEQ:HEX copied from the API is its keyed digest, not a sign of a rewritten chain.
    if (
        expected is not None
        and found is not None
        and keyed_digest(found, config.secret_key).endswith(f":{expected.record_hash}")
    ):
        raise typer.BadParameter(API_DIGEST_GIVEN, param_hint="--expect-head")
    if result.broken is not None:
        typer.echo(f"audit trail BROKEN: {result.broken}")
        typer.echo(f"{result.records_checked} records verified before it, up to {result.head}")
        raise typer.Exit(1)
    typer.echo(f"audit trail intact: {result.records_checked} records, head {result.head}")
