"""`vigil export --study CODE --out DIR|FILE.zip`: a study's SDTM package (docs/exports.md)."""

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from app.cli.common import CLI_ACTOR, database_errors, fail, settings
from app.errors import VigilError


def export(
    study: Annotated[str, typer.Option("--study", help="the study's code")],
    out: Annotated[
        Path, typer.Option("--out", help="the directory to write into, or a .zip file to write")
    ],
) -> None:
    """Write every SDTM dataset of a study (DM, SV, SE, EX, VS, AE, SUPPAE, SUPPVS and the
    trial design) as CSV, Dataset-JSON, NDJSON and XPT, with define.xml and a manifest.json
    (file, rows, SHA-256), into a directory or, when --out ends in .zip, into one ZIP file.
    Arms are masked. The export is audited. On a terminal a progress bar shows the files and
    rows written."""
    from rich.console import Console

    from app.cli.export_progress import package_progress
    from app.db import get_export_sessionmaker, unit_of_work
    from app.exports.sdtm.package import (
        expected_size,
        record_package_export,
        write_package,
        write_package_zip,
    )

    settings()
    with database_errors():
        try:
            with unit_of_work(CLI_ACTOR) as session:
                found = record_package_export(session, study)
        except VigilError as error:
            fail(str(error))

        def readers() -> AbstractContextManager[Session]:
            return get_export_sessionmaker()()

        console = Console(stderr=True)
        files, rows = expected_size(readers, found) if console.is_terminal else (0, 0)
        write = write_package_zip if out.suffix.lower() == ".zip" else write_package
        with package_progress(console, files, rows) as progress:
            manifest = write(readers, found, out, progress)
    typer.echo(f"{len(manifest['files'])} files and manifest.json in {out}")


def reports(
    study: Annotated[str, typer.Option("--study", help="the study's code")],
    out: Annotated[Path, typer.Option("--out", help="the directory to write reports/ into")],
) -> None:
    """Write a study's summary and every started dosing session's report (PDF, no arm, no free
    text) into OUT/reports/, for monitors. The pull is audited."""
    from app.db import unit_of_work
    from app.exports.reports import service as report_service
    from app.exports.sdtm.service import study_by_code

    settings()
    with database_errors():
        try:
            with unit_of_work(CLI_ACTOR) as session:
                found = study_by_code(session, study)
                written = report_service.write_study_reports(session, found, out)
                report_service.audit_study_reports(session, found, len(written))
        except VigilError as error:
            fail(str(error))
    typer.echo(f"{len(written)} reports in {out / 'reports'}")
