"""Committed alert changes wake the live feeds, after the outermost commit only, and on PostgreSQL
notify other processes; rolled-back ones and other changes wake nobody. On real, committed
databases."""

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import listeners, migrations
from app.clock import utcnow
from app.config import ROOT
from app.db import make_engine, make_reader_engine
from app.events import signals
from app.models import AuditRecord, DosingSession, Site
from tests.conftest import BACKENDS
from tests.factories.alerts import make_alert
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study


@dataclass
class Database:
    url: str
    engine: Engine
    reader: Engine
    dosing_session_id: uuid.UUID
    site_id: uuid.UUID

    def alert_changes(self) -> int:
        """The alert changes another connection sees committed."""
        with Session(self.reader) as session:
            stmt = select(func.count()).where(AuditRecord.entity_type == "alerts")
            return session.scalar(stmt) or 0


@pytest.fixture(scope="module", params=BACKENDS)
def database(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[Database]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.info["actor"] = "test"
        site = make_site(session, make_study(session))
        participant = make_participant(session, site, stage="randomised")
        dosing_session_id = make_dosing_session(session, participant).id
        site_id = site.id
        session.commit()
    reader = make_reader_engine(url)
    yield Database(url, engine, reader, dosing_session_id, site_id)
    reader.dispose()
    engine.dispose()


@dataclass(eq=False)
class Waker:
    """Records each wake-up with the alert changes visible to another connection then."""

    database: Database
    seen: list[int] = field(default_factory=list)

    def __call__(self) -> None:
        self.seen.append(self.database.alert_changes())


@pytest.fixture
def waker(database: Database) -> Iterator[Waker]:
    waker = Waker(database)
    signals.add_waker(waker)
    yield waker
    signals.remove_waker(waker)


def _open_alert(session: Session, database: Database) -> uuid.UUID:
    """An alert opens (inside a savepoint, as the alerts service does)."""
    session.info["actor"] = "test"
    dosing_session = session.get_one(DosingSession, database.dosing_session_id)
    rule_id = f"r-{uuid.uuid4().hex[:8]}"
    alert, _ = make_alert(session, dosing_session, found_at=utcnow(), rule_id=rule_id)
    return alert.id


def test_a_committed_alert_change_wakes_the_feeds_once_it_is_visible(
    database: Database, waker: Waker
):
    before = database.alert_changes()
    with Session(database.engine) as session:
        _open_alert(session, database)
        assert waker.seen == []  # the savepoint's release is not the commit
        session.commit()
    assert waker.seen == [before + 1]  # woken once, after the commit, which it can see


def test_a_rolled_back_alert_change_wakes_nobody(database: Database, waker: Waker):
    with Session(database.engine) as session:
        _open_alert(session, database)
        session.rollback()
    assert waker.seen == []


def test_changes_that_touch_no_alert_wake_nobody(database: Database, waker: Waker):
    with Session(database.engine) as session:
        session.info["actor"] = "test"
        make_participant(
            session, session.get_one(Site, database.site_id), f"01-{uuid.uuid4().hex[:3].upper()}"
        )
        session.commit()
    assert waker.seen == []


def test_other_processes_are_notified_at_commit_and_not_on_rollback(database: Database):
    if database.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    conninfo = make_url(database.url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {signals.CHANNEL}")
        with Session(database.engine) as session:
            _open_alert(session, database)
            session.flush()
            assert list(listener.notifies(timeout=0.3)) == []  # not before the commit
            session.rollback()
        assert list(listener.notifies(timeout=0.3)) == []
        with Session(database.engine) as session:
            _open_alert(session, database)
            _open_alert(session, database)
            session.commit()
        notified = list(listener.notifies(timeout=1.0, stop_after=2))
        # one per transaction, naming the process (whose own listener ignores it)
        assert [(n.channel, n.payload) for n in notified] == [(signals.CHANNEL, signals.ORIGIN)]


def test_a_process_that_only_installs_the_listeners_notifies_and_audits(database: Database):
    """A script (a data fix, a worker) that writes alerts without ever importing app.alerts:
    the one install call is all it needs for other processes' streams to hear of its commit."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    with Session(database.engine) as session:
        alert_id = _open_alert(session, database)
        session.commit()
    script = textwrap.dedent(
        f"""
        import sys
        import uuid
        from sqlalchemy.orm import Session
        from app import listeners
        from app.audit.recorder import change_reason
        from app.db import make_engine
        from app.models import Alert
        listeners.install()
        with Session(make_engine({database.url!r})) as session:
            session.info["actor"] = "script:data-fix"
            alert = session.get_one(Alert, uuid.UUID({str(alert_id)!r}))
            with change_reason(session, "title corrected"):
                alert.title = "Hypertensive crisis (title corrected)"
            session.commit()
        assert "app.alerts" not in sys.modules, "the script must not import app.alerts"
        """
    )
    conninfo = make_url(database.url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {signals.CHANNEL}")
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
        notified = list(listener.notifies(timeout=5.0, stop_after=1))
    assert [n.channel for n in notified] == [signals.CHANNEL]
    assert notified[0].payload != signals.ORIGIN  # the script's, not this process's
    with Session(database.reader) as session:
        audited = session.scalars(
            select(AuditRecord.reason).where(
                AuditRecord.entity_id == str(alert_id), AuditRecord.actor == "script:data-fix"
            )
        ).all()
    assert audited == ["title corrected"]


def test_installing_the_listeners_again_audits_and_wakes_once(database: Database, waker: Waker):
    listeners.install()
    listeners.install()
    before = database.alert_changes()
    with Session(database.engine) as session:
        _open_alert(session, database)
        session.commit()
    assert waker.seen == [before + 1]
