"""X-Request-ID: a sane client id is kept; any other is replaced, so no header a client controls
can make an audited action go unaudited (audit_records.request_id holds 64 characters).

Through a real server on a fresh database of each backend: the test-transaction harness never
reaches the request id into the audit trail, and the write it broke was the real commit.
A request's commit is known to be done once a later request that writes an audit record has
been answered (both SQLite's write lock and PostgreSQL's audit-chain lock are held to commit).
"""

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app import migrations
from app.auth import passwords, tokens
from app.db import make_engine
from app.models import AuditRecord, Participant, User
from app.permissions import Role
from app.request_ids import request_id_for
from app.users import service as users
from tests.conftest import BACKENDS, CHEAP_PASSWORD_HASH, TEST_PASSWORD
from tests.factories.trial import make_participant, make_site, make_study
from tests.live_server import live_server

SERVER_MADE = re.compile(r"[0-9a-f]{32}")
TOO_LONG = "trace-" + "0123456789" * 10  # 106 characters of the accepted alphabet
MAX_FAILURES = 3


@dataclass
class Served:
    base: str
    engine: Engine
    participant_id: uuid.UUID
    pharmacist_token: str

    def audit(self, action: str, entity_id: str) -> list[AuditRecord]:
        with Session(self.engine) as session:
            stmt = select(AuditRecord).where(
                AuditRecord.action == action, AuditRecord.entity_id == entity_id
            )
            return list(session.scalars(stmt.order_by(AuditRecord.sequence)))

    def user(self, username: str) -> User:
        with Session(self.engine) as session:
            return session.scalars(select(User).where(User.username == username)).one()


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[Served]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    engine = make_engine(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "password_hash", CHEAP_PASSWORD_HASH)
        with Session(engine) as session:
            session.info["actor"] = "test"
            site = make_site(session, make_study(session))
            participant = make_participant(session, site, stage="randomised")
            for username in ("casey", "robin", "sam"):
                users.create_user(
                    session,
                    username=username,
                    display_name=username.title(),
                    role=Role.COORDINATOR,
                    password=TEST_PASSWORD,
                    site_ids=[site.id],
                )
            pharmacist = users.create_user(
                session,
                username="phil",
                display_name="Phil",
                role=Role.PHARMACIST,
                password=TEST_PASSWORD,
                site_ids=[site.id],
            )
            _, token = tokens.issue(session, pharmacist, tokens.TokenKind.API)
            session.commit()
            built = Served("", engine, participant.id, token)
        with live_server(url, login_max_failures=str(MAX_FAILURES)) as base:
            built.base = base
            yield built
    engine.dispose()


def _sign_in(client: httpx.Client, served: Served, username: str, password: str, **headers: str):
    return client.post(
        f"{served.base}/auth/login",
        json={"username": username, "password": password},
        headers=headers,
    )


@pytest.mark.parametrize(
    "sent", [TOO_LONG, "has space", "semi;colon", "<script>", "ünïcode".encode(), ""]
)
def test_an_odd_request_id_is_replaced_by_a_server_made_one(served, sent):
    response = httpx.get(f"{served.base}/health", headers={"X-Request-ID": sent}, timeout=10)
    assert response.status_code == 200
    assert SERVER_MADE.fullmatch(response.headers["x-request-id"])


def test_a_sane_request_id_is_kept_and_recorded(served):
    sent = "tablet-S01.3:req_0042-" + "x" * 42  # 64 characters
    with httpx.Client(timeout=10) as client:
        refused = _sign_in(client, served, "sam", "wrong guess", **{"X-Request-ID": sent})
        _sign_in(client, served, "sam", "another wrong guess")  # its answer: the first committed
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == sent
    failed = served.audit("login_failed", str(served.user("sam").id))
    assert failed[0].request_id == sent


def test_failed_logins_with_an_over_long_request_id_still_lock_the_account_and_are_audited(
    served,
):
    with httpx.Client(timeout=10) as client:
        answers = [
            _sign_in(client, served, "casey", f"wrong guess {n}", **{"X-Request-ID": TOO_LONG})
            for n in range(MAX_FAILURES + 1)
        ]
        right = _sign_in(client, served, "casey", TEST_PASSWORD, **{"X-Request-ID": TOO_LONG})
    assert [a.status_code for a in answers] == [401] * MAX_FAILURES + [429]
    assert right.status_code == 429  # locked: the right password is not even looked at
    made = [a.headers["x-request-id"] for a in answers]
    assert all(SERVER_MADE.fullmatch(i) for i in made) and len(set(made)) == len(made)
    user = served.user("casey")
    assert user.failed_login_count == MAX_FAILURES and user.locked_until is not None
    failed = served.audit("login_failed", str(user.id))
    assert [r.request_id for r in failed] == made[:MAX_FAILURES]
    [locked] = served.audit("login_locked", str(user.id))[:1]
    assert locked.request_id == made[MAX_FAILURES]


def test_an_unblinded_read_with_an_over_long_request_id_is_audited(served):
    headers = {"Authorization": f"Bearer {served.pharmacist_token}"}
    url = f"{served.base}/participants/{served.participant_id}"
    with httpx.Client(timeout=10, headers=headers) as client:
        read = client.get(url, headers={"X-Request-ID": TOO_LONG})
        client.get(url)  # audited too; its answer: the first read committed
    assert read.status_code == 200
    with Session(served.engine) as session:
        assert read.json()["arm_code"] == session.get(Participant, served.participant_id).arm_code
    reads = served.audit("read_unblinded", str(served.participant_id))
    assert reads[0].actor == "pharmacist:phil"
    assert reads[0].request_id == read.headers["x-request-id"]


def test_the_log_shows_a_replaced_id_truncated_and_escaped(caplog):
    sent = "evil\r\nINFO forged line\x00" + "y" * 200
    with caplog.at_level(logging.WARNING, logger="vigil.http"):
        made = request_id_for(sent)
    [line] = [r.getMessage() for r in caplog.records]
    assert made in line and f"{len(sent)} characters" in line
    assert "\r" not in line and "\n" not in line and "\x00" not in line
    assert "evil\\r\\nINFO forged line\\x00" in line
    assert line.endswith("y" * 76 + "...")  # the first 100 characters only
