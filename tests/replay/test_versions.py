"""Naming the target version for the CLI (app.replay.service.find_version), on both databases."""

from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.replay.service import find_version
from tests.replay import builders


@pytest.fixture
def world(db: Session) -> SimpleNamespace:
    return builders.build(db)


def test_by_id_label_sha256_prefix_and_latest(db: Session, world: SimpleNamespace):
    session = world.dosing_session
    for ref in (str(world.amended.id), builders.AMENDED_LABEL, world.amended.sha256[:8], "latest"):
        assert find_version(db, session, ref).id == world.amended.id, ref
    assert find_version(db, session, "1.4").id == world.own.id


def test_too_short_a_prefix_or_an_unknown_label_is_not_found(db: Session, world):
    for ref in (world.amended.sha256[:4], "2.0"):
        with pytest.raises(NotFound) as missing:
            find_version(db, world.dosing_session, ref)
        assert "loaded:" in missing.value.detail and "mdma-ptsd-phase3 v1.4" in missing.value.detail
