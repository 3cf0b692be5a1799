"""Device tokens over time: a rotation's overlap (the old token works until it ends, then is
refused saying why), an immediate rotation, and expiry after VIGIL_DEVICE_TOKEN_IDLE_DAYS
unused; each change audited."""

from datetime import datetime, timedelta

import pytest

from app.auth import tokens
from tests.auth.accounts import audit_events, bearer

DEVICES = "/api/v1/devices"
ME = "/api/v1/auth/me"


@pytest.fixture
def admin_headers(db, admin) -> dict[str, str]:
    """An admin signed in for longer than the clock is moved here."""
    return bearer(db, admin, ttl=timedelta(days=365))


def _device(http_client, site, admin_headers, name: str = "tablet-s01-1") -> tuple[str, str]:
    created = http_client.post(
        DEVICES, json={"name": name, "site_id": str(site.id)}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    return created.json()["device"]["id"], created.json()["token"]


def _me(http_client, token: str):
    return http_client.get(ME, headers={"Authorization": f"Bearer {token}"})


def _rotate(http_client, device_id: str, admin_headers, **fields):
    rotated = http_client.post(
        f"{DEVICES}/{device_id}/token",
        json={"reason": "scheduled rotation", **fields},
        headers=admin_headers,
    )
    assert rotated.status_code == 200, rotated.text
    return rotated.json()


def test_the_old_token_works_through_the_overlap_then_is_refused(
    http_client, db, site, admin_headers, moved_clock
):
    device_id, old = _device(http_client, site, admin_headers)
    rotated = _rotate(http_client, device_id, admin_headers)
    new = rotated["token"]
    # both listed, the old one with the end of its overlap (the default 60 min)
    listed = rotated["device"]["tokens"]
    assert len(listed) == 2
    assert [t["expires_at"] is None for t in listed] == [False, True]
    [rotation] = audit_events(db, "rotate")
    assert rotation.reason.startswith("device token rotated: scheduled rotation (works until")
    assert datetime.fromisoformat(rotation.after["expires_at"]) == datetime.fromisoformat(
        listed[0]["expires_at"]
    )

    moved_clock.advance(minutes=59)
    assert _me(http_client, old).status_code == 200
    assert _me(http_client, new).status_code == 200
    moved_clock.advance(minutes=2)
    refused = _me(http_client, old)
    assert refused.status_code == 401
    detail = refused.json()["detail"]
    assert "replaced by a new one" in detail and "use the new token" in detail
    assert f"POST /api/v1/devices/{device_id}/token" in detail
    assert _me(http_client, new).status_code == 200
    devices = http_client.get(DEVICES, headers=admin_headers).json()["items"]
    assert len(devices[0]["tokens"]) == 1


def test_the_overlap_is_configurable(http_client, site, admin_headers, moved_clock, settings_env):
    settings_env(device_token_overlap_minutes=5)
    device_id, old = _device(http_client, site, admin_headers)
    _rotate(http_client, device_id, admin_headers)
    moved_clock.advance(minutes=4)
    assert _me(http_client, old).status_code == 200
    moved_clock.advance(minutes=2)
    assert _me(http_client, old).status_code == 401
    # a rotation may choose its own overlap
    device_id, old = _device(http_client, site, admin_headers, "tablet-s01-2")
    _rotate(http_client, device_id, admin_headers, overlap_minutes=120)
    moved_clock.advance(minutes=119)
    assert _me(http_client, old).status_code == 200


def test_an_immediate_rotation_revokes_the_old_token_now(http_client, db, site, admin_headers):
    device_id, old = _device(http_client, site, admin_headers)
    rotated = _rotate(http_client, device_id, admin_headers, overlap_minutes=0)
    assert _me(http_client, old).status_code == 401
    assert _me(http_client, rotated["token"]).status_code == 200
    [revoked] = audit_events(db, "revoke")
    assert revoked.after["revoked_reason"] == "device token rotated: scheduled rotation"
    assert len(rotated["device"]["tokens"]) == 1


@pytest.mark.parametrize("overlap", [-1, 10081, "soon"])
def test_an_overlap_out_of_range_is_refused(http_client, site, admin_headers, overlap):
    device_id, _ = _device(http_client, site, admin_headers)
    refused = http_client.post(
        f"{DEVICES}/{device_id}/token",
        json={"reason": "scheduled rotation", "overlap_minutes": overlap},
        headers=admin_headers,
    )
    assert refused.status_code == 422
    assert "overlap_minutes" in refused.text


def test_a_device_token_unused_for_the_idle_period_expires(
    http_client, site, admin_headers, moved_clock, settings_env
):
    settings_env(device_token_idle_days=30)
    _, never_used = _device(http_client, site, admin_headers, "tablet-s01-1")
    _, used = _device(http_client, site, admin_headers, "tablet-s01-2")
    moved_clock.advance(days=20)
    assert _me(http_client, used).status_code == 200  # in use: its idle period starts again
    moved_clock.advance(days=11)
    refused = _me(http_client, never_used)
    assert refused.status_code == 401
    detail = refused.json()["detail"]
    assert "expired after 30 days unused (never used since it was issued at" in detail
    assert "ask an admin for a new device token (POST /api/v1/devices/" in detail
    assert _me(http_client, used).status_code == 200
    moved_clock.advance(days=31)
    detail = _me(http_client, used).json()["detail"]
    assert "expired after 30 days unused (last used at" in detail
    # an expired token is no longer listed as working
    devices = http_client.get(DEVICES, headers=admin_headers).json()["items"]
    assert [d["tokens"] for d in devices] == [[], []]


def test_idle_expiry_is_for_device_tokens_only(http_client, db, admin, moved_clock, settings_env):
    settings_env(device_token_idle_days=1)
    _, plaintext = tokens.issue(db, admin, tokens.TokenKind.API, ttl=timedelta(days=90))
    moved_clock.advance(days=5)
    assert _me(http_client, plaintext).status_code == 200
