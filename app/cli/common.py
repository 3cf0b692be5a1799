"""What every `vigil` command shares: failing with one line on stderr, the settings, showing a
database URL without its password, the URL a local client reaches a server at."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from app.config import Settings, get_settings
from app.errors import VigilError

CLI_ACTOR = "cli"


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        fail(f"configuration: {problems}", code=2)


def shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def client_base_url(host: str, port: int) -> str:
    """The URL a local client uses to reach a server bound to ``host``."""
    if host in {"0.0.0.0", "", "::"}:  # noqa: S104 - a listening address, not a bind
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit status 1."""
    try:
        yield
    except VigilError as exc:
        fail(exc.detail)
    except (OperationalError, ProgrammingError) as exc:
        fail(
            f"database error: {exc.orig or exc}\n"
            f"(database {shown(settings().database_url)}; has `vigil migrate` been run?)"
        )
