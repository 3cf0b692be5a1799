"""`vigil audit verify`: walk the audit hash chain, of the database or of an export file;
`vigil audit export`: write the trail as an export an auditor verifies offline."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from app.audit.verify import Head

from app.cli.common import CLI_ACTOR, database_errors, settings

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
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="An exported trail (vigil audit export, GET /api/v1/audit-records/export) to "
            "check offline instead of the database",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Walk the audit hash chain (read-only); exit 1 naming the first broken record."""
    from app.audit.verify import API_DIGEST_GIVEN, Head, keyed_digest, verify_database

    try:
        expected = Head.parse(expect_head) if expect_head is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expect-head") from None
    if file is not None:
        _verify_file(file, expected)
        return
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


def _verify_file(path: Path, expected: "Head | None") -> None:
    from app.audit.export_check import verify_export_file

    verdict = verify_export_file(path, expected)
    chain = verdict.chain
    if not verdict.intact:
        typer.echo(f"audit trail export BROKEN: {verdict.problem}")
        if chain is not None:
            typer.echo(f"{chain.records_checked} records verified before it, up to {chain.head}")
        raise typer.Exit(1)
    assert chain is not None  # an intact verdict has walked the chain
    withheld = f", {verdict.withheld} values withheld (verified by commitment)"
    typer.echo(
        f"audit trail export intact: {verdict.records} records, {verdict.signatures} "
        f"signatures{withheld if verdict.withheld else ''}, head {chain.head}"
    )
    if verdict.unverifiable:
        typer.echo(
            f"{verdict.unverifiable} records from before the chain-2 cut-over have values "
            "withheld: their content was not checked, only their place in the chain"
        )


@audit_cli.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="the file to write (NDJSON, or ODM XML)")],
    reveal: Annotated[
        list[str] | None,
        typer.Option(
            "--reveal",
            help="include what an export withholds by default: arms, note_text, "
            "client_address (repeat the option for several)",
        ),
    ] = None,
    odm: Annotated[
        bool, typer.Option("--odm", help="write the CDISC ODM 1.3.2 rendering instead")
    ] = False,
) -> None:
    """Write the whole audit trail with its hashes and e-signatures, to verify offline with
    `vigil audit verify --file`. The export is itself an audit event, in the file."""
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session

    from app.audit import odm as odm_rendering
    from app.audit import trail_export
    from app.audit.withheld import Withheld
    from app.db import get_export_sessionmaker, unit_of_work

    try:
        revealed = frozenset(Withheld(kind) for kind in reveal or [])
    except ValueError:
        kinds = ", ".join(kind.value for kind in Withheld)
        raise typer.BadParameter(f"reveal one of {kinds}", param_hint="--reveal") from None
    settings()
    with database_errors():
        with unit_of_work(CLI_ACTOR) as session:
            event_id = trail_export.record_export(session, revealed, "odm" if odm else "ndjson")

        def readers() -> AbstractContextManager[Session]:
            return get_export_sessionmaker()()

        if odm:
            chunks = odm_rendering.odm_chunks(readers, event_id)
        else:
            chunks = trail_export.export_chunks(readers, event_id, revealed)
        with out.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)
    typer.echo(f"wrote the audit trail to {out}")
