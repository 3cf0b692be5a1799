"""`make run` twice, with real processes: the second `vigil serve --demo-tablet` stops at once
naming VIGIL_PORT, and the first server and its tablet go on as if nothing happened."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from app.config import ROOT
from app.db import make_engine
from app.demo.tablet import DEMO_DEVICE
from app.models import AccessToken, DosingSession, User, VitalReading
from tests.cli.test_serve import free_port
from tests.conftest import BACKENDS

VIGIL = [sys.executable, "-m", "app.cli"]
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, seconds: float = 60) -> T:
    deadline = time.monotonic() + seconds
    while (found := probe()) is None or found is False:
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.2)
    return found


@contextmanager
def database(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def tablet_tokens(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(AccessToken.id, AccessToken.label, AccessToken.last_seen_at,
                       AccessToken.revoked_at)
                .join(User, User.id == AccessToken.user_id)
                .where(User.username == DEMO_DEVICE)
                .order_by(AccessToken.created_at)
            )
        )  # fmt: skip


def live_readings(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(
            select(func.count())
            .select_from(VitalReading)
            .join(DosingSession, DosingSession.id == VitalReading.dosing_session_id)
            .where(DosingSession.status == "in_progress")
        )


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_make_run_changes_nothing_and_names_vigil_port(
    backend: str, fresh_database_url: Any
):
    url = fresh_database_url(backend)
    env = {**os.environ, "VIGIL_DATABASE_URL": url, "VIGIL_PORT": str(free_port())}
    for step in (["migrate"], ["protocol", "load"], ["demo"]):
        subprocess.run([*VIGIL, *step], env=env, cwd=ROOT, check=True, capture_output=True)
    serve = [*VIGIL, "serve", "--demo-tablet", "--tablet-interval", "0.2"]
    first = subprocess.Popen(
        serve, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    with database(url) as engine:
        try:
            posting = eventually(
                lambda: next(
                    (t for t in tablet_tokens(engine) if t.last_seen_at and not t.revoked_at),
                    None,
                ),
                "the first server's tablet posting",
            )
            tokens_before = tablet_tokens(engine)
            readings_before = live_readings(engine)

            second = subprocess.run(
                serve, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
            )

            assert second.returncode == 1, second.stderr
            assert "is already in use" in second.stderr
            assert "VIGIL_PORT" in second.stderr
            after = tablet_tokens(engine)
            assert [t.id for t in after] == [t.id for t in tokens_before]  # none issued
            assert [t.revoked_at for t in after] == [t.revoked_at for t in tokens_before]
            assert next(t for t in after if t.id == posting.id).revoked_at is None
            eventually(
                lambda: live_readings(engine) > readings_before,
                "a reading from the first server's tablet after the second run",
            )
        finally:
            first.send_signal(signal.SIGINT)
            _, stderr = first.communicate(timeout=30)
        assert "Application shutdown complete" in stderr
        [retired] = [t for t in tablet_tokens(engine) if t.id == posting.id]
        assert retired.revoked_at is not None  # a stopped tablet's token stops working
