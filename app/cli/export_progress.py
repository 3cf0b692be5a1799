"""The progress bar of `vigil export` on a terminal: files and rows written of the package's
expected totals (rich). Off a terminal (a pipe, a log, cron) it shows nothing."""

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from app.exports.sdtm.package import Progress as PackageProgress


def _quiet(_name: str, _rows: int, _done: bool) -> None:
    pass


@contextmanager
def package_progress(console: Console, files: int, rows: int) -> Iterator[PackageProgress]:
    """A callback for ``write_package`` that draws a bar on ``console`` when it is a terminal."""
    if not console.is_terminal:
        yield _quiet
        return
    bar = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.fields[files]}/{task.fields[total_files]} files"),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
        TimeRemainingColumn(),
        console=console,
    )
    written = 0
    with bar:
        task = bar.add_task("export", total=rows, files=0, total_files=files)

        def advance(name: str, added: int, done: bool) -> None:
            nonlocal written
            written += done
            bar.update(task, advance=added, description=name, files=written)

        yield advance
