"""`vigil export --study CODE --out DIR`: a study's SDTM package (docs/exports.md)."""

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from app.cli.common import CLI_ACTOR, database_errors, fail, settings
from app.errors import VigilError


def export(
    study: Annotated[str, typer.Option("--study", help="the study's code")],
    out: Annotated[Path, typer.Option("--out", help="the directory to write into")],
) -> None:
    """Write every SDTM dataset of a study (DM, SV, SE, EX, VS, AE, SUPPAE, SUPPVS and the
    trial design) as CSV, Dataset-JSON, NDJSON and XPT, with define.xml and a manifest.json
    (file, rows, SHA-256). Arms are masked. The export is audited."""
    from app.db import get_export_sessionmaker, unit_of_work
    from app.exports.sdtm.package import record_package_export, write_package

    settings()
    with database_errors():
        try:
            with unit_of_work(CLI_ACTOR) as session:
                found = record_package_export(session, study)
        except VigilError as error:
            fail(str(error))

        def readers() -> AbstractContextManager[Session]:
            return get_export_sessionmaker()()

        manifest = write_package(readers, found, out, lambda name: typer.echo(f"wrote {name}"))
    typer.echo(f"{len(manifest['files'])} files and manifest.json in {out}")
