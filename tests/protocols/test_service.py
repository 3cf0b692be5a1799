"""Storing protocol versions (app.protocols.service.store), on both databases."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict
from app.models import ProtocolVersion
from app.protocols import service as protocols
from app.protocols.loader import parse_protocol_text
from tests.protocols.test_loader import MINIMAL

TEXT = MINIMAL.read_text(encoding="utf-8")
LABEL = 'version: "1"'


def versions(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(ProtocolVersion)) or 0


def test_the_same_content_again_is_a_no_op(db: Session):
    first, created = protocols.store(db, parse_protocol_text(TEXT, source="minimal.yaml"))
    again, created_again = protocols.store(db, parse_protocol_text(TEXT, source="copy.yaml"))
    assert (created, created_again) == (True, False)
    assert again.id == first.id and versions(db) == 1


def test_other_content_under_a_stored_label_is_refused(db: Session):
    first, _ = protocols.store(db, parse_protocol_text(TEXT, source="minimal.yaml"))
    changed = TEXT.replace("title:", "title: Amended -", 1)
    assert changed != TEXT and LABEL in changed

    with pytest.raises(Conflict) as refused:
        protocols.store(db, parse_protocol_text(changed, source="amended.yaml"))

    detail = refused.value.detail
    assert "version '1' is already loaded with other content" in detail
    assert "amended.yaml" in detail and "An amendment needs a new version label" in detail
    assert versions(db) == 1
    assert db.scalar(select(ProtocolVersion.sha256)) == first.sha256


def test_other_content_under_a_new_label_is_the_next_version(db: Session):
    protocols.store(db, parse_protocol_text(TEXT, source="minimal.yaml"))
    amended = TEXT.replace("title:", "title: Amended -", 1).replace(LABEL, 'version: "2"')
    version, created = protocols.store(db, parse_protocol_text(amended, source="amended.yaml"))
    assert created and (version.version_label, version.sequence) == ("2", 2)


def test_the_database_refuses_a_second_version_under_a_stored_label(db: Session):
    """A writer that skips store() (a script, a manual fix) cannot give a label two contents."""
    first, _ = protocols.store(db, parse_protocol_text(TEXT, source="minimal.yaml"))
    db.commit()
    twin = ProtocolVersion(
        protocol_key=first.protocol_key,
        sequence=first.sequence + 1,
        version_label=first.version_label,
        title=first.title,
        sha256="0" * 64,
        source_name="twin.yaml",
        source_text=first.source_text,
        definition=first.definition,
    )
    with pytest.raises(IntegrityError, match="version_label"), db.begin_nested():
        db.add(twin)
    assert versions(db) == 1
