"""Naming the target version for the CLI (app.replay.service.find_version), on both databases."""

from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import ProtocolVersion
from app.protocols.loader import parse_protocol_text
from app.replay.service import find_version
from tests.replay import builders


@pytest.fixture
def world(db: Session) -> SimpleNamespace:
    return builders.build(db)


def test_by_id_label_sha256_prefix_and_latest(db: Session, world: SimpleNamespace):
    session = world.dosing_session
    for ref in (str(world.amended.id), builders.AMENDED_LABEL, world.amended.sha256[:8], "latest"):
        assert find_version(db, session, ref).id == world.amended.id, ref
    assert find_version(db, session, "1.2").id == world.own.id


def test_a_label_two_versions_share_is_refused_with_both(db: Session, world: SimpleNamespace):
    # store() now refuses this; a database loaded before it did may hold such a pair
    text = builders.amended_text().replace("value: 150", "value: 145", 1)
    loaded = parse_protocol_text(text, source="again.yaml")
    again = ProtocolVersion(
        protocol_key=world.amended.protocol_key,
        sequence=world.amended.sequence + 1,
        version_label=world.amended.version_label,
        title=world.amended.title,
        sha256=loaded.sha256,
        source_name="again.yaml",
        source_text=loaded.source_text,
        definition=loaded.protocol.model_dump(mode="json"),
    )
    db.add(again)
    db.flush()
    with pytest.raises(InvalidInput) as refused:
        find_version(db, world.dosing_session, builders.AMENDED_LABEL)
    assert str(world.amended.id) in refused.value.detail and str(again.id) in refused.value.detail


def test_too_short_a_prefix_or_an_unknown_label_is_not_found(db: Session, world):
    for ref in (world.amended.sha256[:4], "2.0"):
        with pytest.raises(NotFound) as missing:
            find_version(db, world.dosing_session, ref)
        assert "loaded:" in missing.value.detail and "mdma-ptsd-phase3 v1.2" in missing.value.detail
