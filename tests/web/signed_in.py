"""Helpers of the page tests that act as a signed-in person (the fixtures ``web`` and
``person`` are in tests/web/conftest.py): a record's audit trail, a form posted with its
page's token."""

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditRecord
from tests.web.test_signin import form_token


def audit_of(db: Session, entity_type: str, entity_id: object, action: str | None = None):
    """The audit records of one record, in the order they were written."""
    db.expire_all()
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == entity_type, AuditRecord.entity_id == str(entity_id)
    )
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    return db.scalars(stmt.order_by(AuditRecord.sequence)).all()


def post_form(web: TestClient, path: str, data: dict[str, str], page: str):
    """Post ``data`` to ``path`` with the form token of ``page``, as its form would."""
    return web.post(path, data={**data, "csrf_token": form_token(web, page)})
