"""Using, listing, revoking tokens: sign-out, expiry, the CSRF header, API and device tokens."""

import uuid
from datetime import timedelta

import pytest

from app.auth import tokens
from app.auth.service import revoke_all
from app.auth.tokens import TokenKind
from app.models import AccessToken, User
from app.permissions import Role
from app.users.service import create_device
from tests.auth.accounts import PASSWORD, audit_events, bearer, make_account

ME = "/api/v1/auth/me"
TOKENS = "/api/v1/auth/tokens"


@pytest.fixture
def therapist(db, site) -> User:
    return make_account(db, "tess", Role.THERAPIST, [site])


def test_logout_revokes_the_token_and_clears_the_cookie(http_client, db, therapist):
    token = http_client.post(
        "/api/v1/auth/login", json={"username": "tess", "password": PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert http_client.get(ME, headers=headers).status_code == 200
    response = http_client.post("/api/v1/auth/logout", headers=headers)
    assert response.status_code == 204
    cleared = response.headers["set-cookie"].lower()
    assert cleared.startswith('vigil_session="";') and "max-age=0" in cleared
    assert http_client.get(ME, headers=headers).status_code == 401
    [record] = audit_events(db, "logout")
    assert record.entity_type == "access_tokens"
    assert record.after["revoked_reason"] == "signed out"
    assert record.actor == "therapist:tess"


def test_expired_and_revoked_tokens_are_refused(http_client, db, therapist, moved_clock):
    short = bearer(db, therapist, ttl=timedelta(minutes=5))
    revoked_row, revoked = tokens.issue(db, therapist, TokenKind.SESSION)
    revoked_row.revoked_at = moved_clock.now()
    assert http_client.get(ME, headers=short).status_code == 200
    moved_clock.advance(minutes=6)
    expired = http_client.get(ME, headers=short)
    assert expired.status_code == 401
    assert expired.headers["content-type"] == "application/problem+json"
    assert http_client.get(ME, headers={"Authorization": f"Bearer {revoked}"}).status_code == 401
    assert http_client.get(ME, headers={"Authorization": "Bearer vgl_s_made-up"}).status_code == 401
    assert http_client.get(ME).status_code == 401


def test_a_cookie_authenticated_change_needs_the_csrf_header(http_client, therapist):
    http_client.post("/api/v1/auth/login", json={"username": "tess", "password": PASSWORD})
    assert http_client.get(ME).status_code == 200  # reads need no header
    refused = http_client.post("/api/v1/auth/logout")
    assert refused.status_code == 403
    assert "x-vigil-csrf" in refused.json()["detail"]
    assert http_client.get(ME).status_code == 200  # the refused sign-out changed nothing
    assert http_client.post("/api/v1/auth/logout", headers={"X-Vigil-CSRF": "1"}).status_code == 204


def test_api_tokens_are_shown_once_and_listed_without_secrets(http_client, db, therapist):
    session_headers = bearer(db, therapist)
    issued = http_client.post(TOKENS, json={"label": "nightly export"}, headers=session_headers)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["token"].startswith("vgl_a_")
    assert body["kind"] == "api"
    assert body["label"] == "nightly export"
    lifetime = _parse(body["expires_at"]) - _parse(body["created_at"])
    assert lifetime == timedelta(days=90)

    api_headers = {"Authorization": f"Bearer {body['token']}"}
    assert http_client.get(ME, headers=api_headers).json()["role"] == "therapist"
    listed = http_client.get(TOKENS, headers=session_headers)
    assert listed.status_code == 200
    assert body["token"] not in listed.text
    assert {t["kind"] for t in listed.json()["items"]} == {"session", "api"}
    assert all("token" not in t and "token_hash" not in t for t in listed.json()["items"])
    # a token cannot mint a successor for itself
    assert http_client.post(TOKENS, json={"label": "copy"}, headers=api_headers).status_code == 403
    [created] = audit_events(db, "create", body["id"])
    assert created.entity_type == "access_tokens"
    assert "token_hash" not in created.after


def test_api_token_lifetime_is_bounded(http_client, db, therapist):
    headers = bearer(db, therapist)
    assert (
        http_client.post(TOKENS, json={"label": "x", "ttl_days": 7}, headers=headers).status_code
        == 201
    )
    too_long = http_client.post(TOKENS, json={"label": "x", "ttl_days": 366}, headers=headers)
    assert too_long.status_code == 422
    assert "365" in too_long.json()["detail"]
    assert (
        http_client.post(TOKENS, json={"label": "x", "ttl_days": 0}, headers=headers).status_code
        == 422
    )


def test_revoking_tokens_own_or_as_admin(http_client, db, site, therapist, admin, admin_headers):
    other = make_account(db, "sam", Role.THERAPIST, [site])
    mine, _ = tokens.issue(db, therapist, TokenKind.API, label="mine")
    theirs, theirs_plain = tokens.issue(db, other, TokenKind.API, label="theirs")
    headers = bearer(db, therapist)
    reason = {"reason": "laptop lost"}

    revoked = http_client.post(f"{TOKENS}/{mine.id}/revoke", json=reason, headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_reason"] == "laptop lost"
    again = http_client.post(f"{TOKENS}/{mine.id}/revoke", json=reason, headers=headers)
    assert again.status_code == 409
    not_mine = http_client.post(f"{TOKENS}/{theirs.id}/revoke", json=reason, headers=headers)
    assert not_mine.status_code == 404
    assert (
        http_client.post(
            f"{TOKENS}/{theirs.id}/revoke", json=reason, headers=admin_headers
        ).status_code
        == 200
    )
    assert (
        http_client.get(ME, headers={"Authorization": f"Bearer {theirs_plain}"}).status_code == 401
    )
    [record] = audit_events(db, "revoke", str(theirs.id))
    assert record.reason == "laptop lost"
    assert record.actor == "admin:root-admin"
    live = http_client.get(TOKENS, headers=headers).json()["items"]
    assert str(mine.id) not in {t["id"] for t in live}
    everything = http_client.get(TOKENS, params={"live_only": "false"}, headers=headers).json()
    assert str(mine.id) in {t["id"] for t in everything["items"]}


def test_a_sponsor_api_token_is_read_only(http_client, db):
    sponsor = make_account(db, "dana-sponsor", Role.SPONSOR)
    issued = http_client.post(
        TOKENS, json={"label": "SDTM pull"}, headers=bearer(db, sponsor)
    ).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    me = http_client.get(ME, headers=headers).json()
    assert me["role"] == "sponsor"
    writes = {"participant:write", "session:run", "dose:record", "user:manage", "sign"}
    assert not writes & set(me["permissions"])
    assert http_client.get("/api/v1/users", headers=headers).status_code == 403


def test_a_device_token_acts_only_as_its_device(http_client, db, site, admin_headers):
    created = http_client.post(
        "/api/v1/devices",
        json={"name": "tablet-s01-1", "site_id": str(site.id)},
        headers=admin_headers,
    ).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    me = http_client.get(ME, headers=headers).json()
    assert (me["role"], me["site_ids"]) == ("device", [str(site.id)])
    assert me["permissions"] == sorted(
        ["authenticated", "public", "session:discover", "vitals:record"]
    )
    assert http_client.get("/api/v1/users", headers=headers).status_code == 403
    assert http_client.post(TOKENS, json={"label": "more"}, headers=headers).status_code == 403
    password = http_client.post(
        "/api/v1/auth/login", json={"username": "tablet-s01-1", "password": "anything at all"}
    )
    assert password.status_code == 401
    row = db.get(AccessToken, uuid.UUID(created["device"]["tokens"][0]["id"]))
    db.refresh(row)
    assert row.last_seen_at is not None
    assert row.last_seen_address == "testclient"


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


def test_a_refused_token_is_told_what_to_do_next_by_its_kind(http_client, db, site, admin):
    device, device_token = create_device(db, "tablet-s01-9", site.id)
    revoke_all(db, device.id, "tablet lost")
    api_row, api_token = tokens.issue(db, admin, TokenKind.API)
    api_row.revoked_at = api_row.created_at
    db.flush()

    def refusal(token: str) -> str:
        response = http_client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
        return response.json()["detail"]

    assert "ask an admin for a new device token" in refusal(device_token)
    assert "sign in" not in refusal(device_token)  # a tablet has no one to sign in
    assert "create a new one (POST /api/v1/auth/tokens)" in refusal(api_token)
    assert "sign in again" in refusal("vgl_s_made-up")


def test_a_refused_role_reads_as_english(http_client, db, admin_headers):
    response = http_client.get("/api/v1/participants", headers=admin_headers)
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "an admin may not do this (participant:read)"
