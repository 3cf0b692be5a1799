"""The simulated demo tablet: a token of its own per run, and it stops when it is refused."""

import uuid

import pytest
from sqlalchemy.orm import Session

from app import migrations
from app.auth import tokens
from app.demo import tablet
from app.demo.seed import seed_demo
from tests.conftest import BACKENDS
from tests.live_server import live_server


def test_a_second_run_of_the_demo_tablet_leaves_the_first_runs_token_working(db: Session):
    seed_demo(db)
    first = tablet.prepare_demo_tablet(db)

    second = tablet.prepare_demo_tablet(db)

    assert tokens.resolve(db, first.token) is not None  # the first tablet keeps posting
    assert tokens.resolve(db, second.token) is not None
    assert second.session_id == first.session_id
    assert first.token_id is not None
    tablet.retire_demo_token(db, first.token_id)  # the first run stops
    assert tokens.resolve(db, first.token) is None
    assert tokens.resolve(db, second.token) is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_refused_token_stops_the_tablet_saying_what_to_do(backend: str, fresh_database_url):
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    with live_server(url) as base, pytest.raises(RuntimeError) as refused:
        tablet.run(
            base.removesuffix("/api/v1"),
            "vgl_d_revoked-or-never-issued",
            str(uuid.uuid4()),
            interval_seconds=0.01,
            max_posts=20,  # the old tablet retried a refused token forever
            seed=1,
        )
    assert isinstance(refused.value, tablet.TabletRefused)
    assert "401" in str(refused.value)
    assert "new device token" in str(refused.value)
