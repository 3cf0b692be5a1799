"""Signing in with a password: the token, the cookie, refusals that tell nothing, lockout, audit."""

import json
from datetime import timedelta

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select

from app.auth import passwords
from app.auth.login import REFUSED, lockout_period
from app.models import AuditRecord, User
from app.permissions import Role
from app.users import service as users
from tests.auth.accounts import PASSWORD, audit_events, make_account

LOGIN = "/api/v1/auth/login"


def sign_in(http_client, username: str, password: str = PASSWORD):
    return http_client.post(LOGIN, json={"username": username, "password": password})


@pytest.fixture
def coordinator(db, site) -> User:
    return make_account(db, "casey", Role.COORDINATOR, [site])


def test_login_answers_a_bearer_token_and_sets_the_session_cookie(http_client, coordinator, site):
    response = sign_in(http_client, "casey")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"].startswith("vgl_s_")
    assert body["user"] == {
        "id": str(coordinator.id),
        "username": "casey",
        "display_name": "Casey",
        "role": "coordinator",
        "site_ids": [str(site.id)],
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"vigil_session={body['access_token']};")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=strict", "max-age=43200"} <= flags
    assert "secure" not in flags  # the test environment is dev

    as_bearer = http_client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert as_bearer.status_code == 200
    assert as_bearer.json()["username"] == "casey"
    assert as_bearer.json()["via_cookie"] is False
    as_cookie = http_client.get("/api/v1/auth/me")  # the TestClient kept the cookie
    assert as_cookie.status_code == 200
    assert as_cookie.json()["via_cookie"] is True
    assert "participant:write" in as_cookie.json()["permissions"]


@pytest.mark.parametrize(
    ("env", "secure"),
    [
        ({"environment": "production"}, True),
        ({"environment": "production", "cookie_secure": "false"}, False),
        ({"environment": "dev", "cookie_secure": "true"}, True),
    ],
)
def test_the_cookie_is_secure_outside_dev(http_client, coordinator, settings_env, env, secure):
    settings_env(secret_key="s" * 40, **env)
    response = sign_in(http_client, "casey")
    assert response.status_code == 200
    flags = {part.strip().lower() for part in response.headers["set-cookie"].split(";")}
    assert ("secure" in flags) is secure


def test_session_lifetime_comes_from_the_settings(http_client, coordinator, settings_env):
    settings_env(session_ttl_minutes=30)
    response = sign_in(http_client, "casey")
    assert "max-age=1800" in response.headers["set-cookie"].lower()


class CountingHash(PasswordHash):
    """The tests' cheap hasher, counting password verifications."""

    def __init__(self) -> None:
        super().__init__((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
        self.verifications = 0

    def verify(self, password, hash):
        self.verifications += 1
        return super().verify(password, hash)

    def verify_and_update(self, password, hash):
        self.verifications += 1
        return super().verify_and_update(password, hash)


def test_unknown_user_and_wrong_password_are_indistinguishable(
    http_client, db, coordinator, monkeypatch
):
    counting = CountingHash()
    monkeypatch.setattr(passwords, "password_hash", counting)
    answers = {}
    for username in ("casey", "nobody-at-all"):
        before = counting.verifications
        response = sign_in(http_client, username, "not the password")
        answers[username] = (
            response.status_code,
            response.json(),
            response.headers["content-type"],
        )
        assert counting.verifications - before == 1  # the same work either way
    assert answers["casey"] == answers["nobody-at-all"]
    status, body, content_type = answers["casey"]
    assert status == 401
    assert content_type == "application/problem+json"
    assert body["detail"] == REFUSED


def test_deactivated_users_and_devices_cannot_sign_in_with_a_password(http_client, db, site):
    make_account(db, "leaver", Role.THERAPIST, [site]).active = False
    device, _ = users.create_device(db, "tablet-1", site.id)
    for username in ("leaver", "tablet-1"):
        response = sign_in(http_client, username)
        assert response.status_code == 401
        assert response.json()["detail"] == REFUSED
    whys = {e.entity_id: e.after["why"] for e in audit_events(db, "login_failed")}
    assert whys[str(device.id)] == "no password sign-in"


def test_lockout_after_repeated_failures_then_unlock_by_time(
    http_client, db, coordinator, moved_clock
):
    for attempt in range(1, 6):
        response = sign_in(http_client, "casey", f"wrong guess {attempt}")
        assert response.status_code == 401
        db.refresh(coordinator)
        assert coordinator.failed_login_count == attempt  # committed despite the 401
    assert coordinator.locked_until is not None

    # while locked, the right and a wrong password get the same answer
    right, wrong = sign_in(http_client, "casey"), sign_in(http_client, "casey", "wrong again")
    assert right.status_code == wrong.status_code == 429
    assert right.json() == wrong.json()
    assert "locked until" in right.json()["detail"]
    assert right.json()["retry_at"] == coordinator.locked_until.isoformat()
    assert 1 <= int(right.headers["retry-after"]) <= 60
    db.refresh(coordinator)
    assert coordinator.failed_login_count == 5  # attempts while locked are not even checked

    moved_clock.advance(seconds=61)
    response = sign_in(http_client, "casey")
    assert response.status_code == 200
    db.refresh(coordinator)
    assert coordinator.failed_login_count == 0
    assert coordinator.locked_until is None
    assert coordinator.last_login_at is not None


def test_each_further_failure_locks_for_longer(http_client, db, coordinator, moved_clock):
    periods = [lockout_period(n) for n in (4, 5, 6, 7, 8, 20)]
    assert periods == [None, *(timedelta(minutes=m) for m in (1, 5, 15, 60, 60))]
    for attempt in range(5):
        sign_in(http_client, "casey", f"wrong {attempt}")
    moved_clock.advance(minutes=2)  # the first lock (1 min) is over
    assert sign_in(http_client, "casey", "wrong once more").status_code == 401
    db.refresh(coordinator)
    first = coordinator.locked_until
    assert first is not None
    moved_clock.advance(minutes=4)  # the second lock is 5 min
    assert sign_in(http_client, "casey").status_code == 429
    moved_clock.advance(minutes=2)
    assert sign_in(http_client, "casey").status_code == 200


def test_lockout_threshold_comes_from_the_settings(http_client, db, coordinator, settings_env):
    settings_env(login_max_failures=2, login_lockout_minutes="10,30")
    sign_in(http_client, "casey", "wrong 1")
    assert sign_in(http_client, "casey", "wrong 2").status_code == 401
    locked = sign_in(http_client, "casey")
    assert locked.status_code == 429
    assert 540 < int(locked.headers["retry-after"]) <= 600


def test_an_admin_unlocks_an_account(http_client, db, coordinator, admin_headers):
    for attempt in range(5):
        sign_in(http_client, "casey", f"wrong {attempt}")
    assert sign_in(http_client, "casey").status_code == 429
    unlocked = http_client.post(
        f"/api/v1/users/{coordinator.id}/unlock",
        json={"reason": "identity confirmed by phone"},
        headers=admin_headers,
    )
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["locked_until"] is None
    assert unlocked.json()["failed_login_count"] == 0
    assert sign_in(http_client, "casey").status_code == 200
    [record] = audit_events(db, "unlock", str(coordinator.id))
    assert record.reason == "identity confirmed by phone"
    assert record.actor == "admin:root-admin"
    again = http_client.post(
        f"/api/v1/users/{coordinator.id}/unlock", json={"reason": "again"}, headers=admin_headers
    )
    assert again.status_code == 409


def test_every_attempt_is_audited_and_no_password_is_recorded(http_client, db, coordinator, caplog):
    secret_guess = "my-other-secret-password"
    sign_in(http_client, "casey")
    sign_in(http_client, "casey", secret_guess)
    sign_in(http_client, "ghost", secret_guess)
    for attempt in range(4):
        sign_in(http_client, "casey", f"{secret_guess}{attempt}")
    sign_in(http_client, "casey")  # locked by now

    [success] = audit_events(db, "login", str(coordinator.id))
    assert success.actor == "coordinator:casey"
    assert success.entity_type == "users"
    assert success.after["username"] == "casey"
    failures = audit_events(db, "login_failed", str(coordinator.id))
    assert [f.after["failed_login_count"] for f in failures] == [1, 2, 3, 4, 5]
    assert failures[0].after["why"] == "wrong password"
    assert failures[0].actor == "anonymous"
    assert failures[-1].after["locked_until"] is not None
    [unknown] = audit_events(db, "login_failed", "unknown")
    assert unknown.entity_type == "users"
    assert unknown.after == {"username": "ghost", "why": "unknown username"}
    [locked] = audit_events(db, "login_locked", str(coordinator.id))
    assert locked.after["locked_until"] == failures[-1].after["locked_until"]

    trail = json.dumps(
        [
            [r.before, r.after, r.reason]
            for r in db.scalars(select(AuditRecord).order_by(AuditRecord.sequence))
        ]
    )
    assert secret_guess not in trail
    assert PASSWORD not in trail
    assert coordinator.password_hash not in trail
    assert secret_guess not in caplog.text
    assert PASSWORD not in caplog.text


def test_an_outdated_hash_is_replaced_at_sign_in(http_client, db, site):
    user = make_account(db, "old-hash", Role.CLINICIAN, [site])
    older = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=16, parallelism=1),))
    user.password_hash = older.hash(PASSWORD)
    db.flush()
    before = user.password_hash
    assert sign_in(http_client, "old-hash").status_code == 200
    db.refresh(user)
    assert user.password_hash != before
    assert passwords.password_hash.verify(PASSWORD, user.password_hash)
    assert not passwords.password_hash.current_hasher.check_needs_rehash(user.password_hash)


def test_login_validates_its_body_without_echoing_it(http_client):
    response = http_client.post(LOGIN, json={"username": "casey", "password": "x" * 2000})
    assert response.status_code == 422
    assert "x" * 50 not in response.text
    assert http_client.post(LOGIN, json={"username": "casey"}).status_code == 422


def test_every_401_names_the_bearer_scheme(http_client, anonymous_client, coordinator):
    """RFC 9110: a 401 carries WWW-Authenticate; a client (or the docs page) learns which
    scheme to use."""
    refused = sign_in(http_client, "casey", "not the password")
    unauthenticated = anonymous_client.get("/api/v1/auth/me")
    for response in (refused, unauthenticated):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="vigil"'
