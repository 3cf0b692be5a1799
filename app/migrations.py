"""Run Alembic from code: the CLI and the tests migrate the same way."""

from enum import StrEnum
from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from app.config import ROOT


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise if the models and the migrations disagree."""
    command.check(alembic_config(url))


class SchemaState(StrEnum):
    CURRENT = "current"  # at the code's head
    AHEAD = "ahead"  # at a revision this code does not know: a newer release migrated it
    BEHIND = "behind"  # at an older revision of this code
    UNMIGRATED = "unmigrated"  # no revision at all


@lru_cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(""))


def code_heads() -> frozenset[str]:
    """The revisions the migrations of this code end at."""
    return frozenset(_scripts().get_heads())


def schema_state(connection: Connection) -> tuple[SchemaState, frozenset[str]]:
    """Where the database's schema stands against this code's migrations, and its revisions."""
    revisions = frozenset(MigrationContext.configure(connection).get_current_heads())
    if not revisions:
        return SchemaState.UNMIGRATED, revisions
    if revisions == code_heads():
        return SchemaState.CURRENT, revisions
    known = {script.revision for script in _scripts().walk_revisions()}
    if revisions - known:
        return SchemaState.AHEAD, revisions
    return SchemaState.BEHIND, revisions


def schema_problem(state: SchemaState, revisions: frozenset[str]) -> str | None:
    """What is wrong with a schema in ``state`` for this code, and what to run; None if this
    code can serve it (current, or ahead: migrated by a newer release)."""
    needed = ", ".join(sorted(code_heads()))
    if state is SchemaState.UNMIGRATED:
        return f"the database has no Vigil schema; run `vigil migrate` to bring it to {needed}"
    if state is SchemaState.BEHIND:
        return (
            f"the database schema is at {', '.join(sorted(revisions))}, behind this code's "
            f"{needed}; run `vigil migrate`"
        )
    return None
