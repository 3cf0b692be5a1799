"""An INSERT that skips the rows whose key is already stored, on the session's database."""

from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert


def insert_skipping_conflicts(session: Session, model: Any, *index_elements: Any) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` into ``model`` (PostgreSQL and SQLite both speak
    it); with ``index_elements``, only a conflict on that key is skipped, any other fails."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(model).on_conflict_do_nothing(index_elements=index_elements or None)
