"""Accounts and devices through the admin API: validation by role, deactivation, unlocking,
site membership, device tokens."""

import uuid

import pytest

from app.models import User
from app.permissions import Role
from tests.auth.accounts import PASSWORD, audit_events, bearer, make_account
from tests.factories.trial import make_site

USERS = "/api/v1/users"
DEVICES = "/api/v1/devices"
REASON = {"reason": "left the study team"}


def new_user(role: str, site_ids: list, **fields) -> dict:
    return {
        "username": fields.pop("username", f"new-{role}"),
        "display_name": "Dr. New Person",
        "role": role,
        "password": PASSWORD,
        "site_ids": [str(s) for s in site_ids],
        **fields,
    }


def test_an_admin_creates_users_with_the_sites_their_role_needs(
    http_client, db, site, admin_headers
):
    created = http_client.post(USERS, json=new_user("clinician", [site.id]), headers=admin_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["role"] == "clinician"
    assert body["site_ids"] == [str(site.id)]
    assert body["active"] is True
    assert "password" not in created.text and "hash" not in created.text
    [membership] = audit_events(db, "site_membership", body["id"])
    assert membership.after["added"] == [str(site.id)]
    assert membership.actor == "admin:root-admin"
    monitor = http_client.post(USERS, json=new_user("medical_monitor", []), headers=admin_headers)
    assert monitor.status_code == 201
    signed_in = http_client.post(
        "/api/v1/auth/login", json={"username": "new-clinician", "password": PASSWORD}
    )
    assert signed_in.status_code == 200


@pytest.mark.parametrize(
    ("role", "with_site", "fields", "status", "message"),
    [
        ("coordinator", False, {}, 422, "one or more sites"),
        ("pharmacist", False, {}, 422, "one or more sites"),
        ("sponsor", True, {}, 422, "a sponsor sees every site"),
        ("admin", True, {}, 422, "an admin sees every site"),
        ("device", True, {}, 422, "POST /api/v1/devices"),
        ("therapist", True, {"password": "too short"}, 422, "at least 12"),
        ("therapist", True, {"username": "no spaces please"}, 422, "username"),
        ("therapist", True, {"extra": 1}, 422, "extra"),
        ("wizard", True, {}, 422, "role"),
    ],
)
def test_user_creation_refusals(
    http_client, site, admin_headers, role, with_site, fields, status, message
):
    data = new_user(role, [site.id] if with_site else [], **fields)
    response = http_client.post(USERS, json=data, headers=admin_headers)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert PASSWORD not in response.text


def test_taken_usernames_and_unknown_sites(http_client, site, admin_headers):
    assert (
        http_client.post(USERS, json=new_user("admin", []), headers=admin_headers).status_code
        == 201
    )
    taken = http_client.post(USERS, json=new_user("admin", []), headers=admin_headers)
    assert taken.status_code == 409
    unknown = http_client.post(
        USERS,
        json=new_user("therapist", ["0190c0de-0000-7000-8000-000000000000"]),
        headers=admin_headers,
    )
    assert unknown.status_code == 404


def test_only_admins_manage_users(http_client, db, site):
    coordinator = make_account(db, "casey", Role.COORDINATOR, [site])
    headers = bearer(db, coordinator)
    assert http_client.get(USERS, headers=headers).status_code == 403
    assert http_client.post(USERS, json=new_user("admin", []), headers=headers).status_code == 403
    assert http_client.get(DEVICES, headers=headers).status_code == 403
    assert http_client.get(USERS).status_code == 401


def test_list_and_get_users(http_client, db, site, admin, admin_headers):
    therapist = make_account(db, "tess", Role.THERAPIST, [site])
    page = http_client.get(USERS, params={"role": "therapist"}, headers=admin_headers).json()
    assert [(u["username"], u["site_ids"]) for u in page["items"]] == [("tess", [str(site.id)])]
    everyone = http_client.get(USERS, headers=admin_headers).json()["items"]
    assert {u["username"] for u in everyone} == {"root-admin", "tess"}
    one = http_client.get(f"{USERS}/{therapist.id}", headers=admin_headers)
    assert one.json()["display_name"] == "Tess"
    missing = http_client.get(
        f"{USERS}/0190c0de-0000-7000-8000-000000000000", headers=admin_headers
    )
    assert missing.status_code == 404


def test_deactivation_revokes_every_token(http_client, db, site, admin, admin_headers):
    therapist = make_account(db, "tess", Role.THERAPIST, [site])
    headers = bearer(db, therapist)
    assert http_client.get("/api/v1/auth/me", headers=headers).status_code == 200
    response = http_client.post(
        f"{USERS}/{therapist.id}/deactivate", json=REASON, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    assert http_client.get("/api/v1/auth/me", headers=headers).status_code == 401
    [record] = audit_events(db, "deactivate", str(therapist.id))
    assert record.reason == REASON["reason"]
    [revoked] = audit_events(db, "revoke")
    assert revoked.after["revoked_reason"] == f"account deactivated: {REASON['reason']}"
    again = http_client.post(
        f"{USERS}/{therapist.id}/deactivate", json=REASON, headers=admin_headers
    )
    assert again.status_code == 409
    myself = http_client.post(f"{USERS}/{admin.id}/deactivate", json=REASON, headers=admin_headers)
    assert myself.status_code == 409
    no_reason = http_client.post(f"{USERS}/{admin.id}/deactivate", json={}, headers=admin_headers)
    assert no_reason.status_code == 422


def test_site_membership_changes_are_audited_with_their_reason(
    http_client, db, site, admin_headers
):
    second = make_site(db, _study_of(db, site), code="S02")
    coordinator = make_account(db, "casey", Role.COORDINATOR, [site])
    url = f"{USERS}/{coordinator.id}/sites"
    moved = http_client.post(
        url, json={"site_ids": [str(second.id)], "reason": "moved to S02"}, headers=admin_headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["site_ids"] == [str(second.id)]
    *_, record = audit_events(db, "site_membership", str(coordinator.id))
    assert record.reason == "moved to S02"
    assert record.after == {
        "site_ids": [str(second.id)],
        "added": [str(second.id)],
        "removed": [str(site.id)],
    }
    none = http_client.post(url, json={"site_ids": [], "reason": "no sites"}, headers=admin_headers)
    assert none.status_code == 422
    # a coordinator signed in now sees the new site only
    me = http_client.get("/api/v1/auth/me", headers=bearer(db, coordinator)).json()
    assert me["site_ids"] == [str(second.id)]


def test_devices_get_a_token_once_and_report_when_last_seen(http_client, db, site, admin_headers):
    created = http_client.post(
        DEVICES, json={"name": "tablet-s01-1", "site_id": str(site.id)}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["token"]
    assert token.startswith("vgl_d_")
    assert body["device"]["site_id"] == str(site.id)
    assert body["device"]["last_seen_at"] is None
    device = db.get(User, uuid.UUID(body["device"]["id"]))
    assert device.role == "device"
    assert not device.password_hash.startswith("$argon2")

    http_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    listed = http_client.get(DEVICES, headers=admin_headers).json()["items"]
    assert [d["name"] for d in listed] == ["tablet-s01-1"]
    assert listed[0]["last_seen_at"] is not None
    assert listed[0]["last_seen_address"] == "testclient"
    assert token not in http_client.get(DEVICES, headers=admin_headers).text

    taken = http_client.post(
        DEVICES, json={"name": "tablet-s01-1", "site_id": str(site.id)}, headers=admin_headers
    )
    assert taken.status_code == 409
    nowhere = http_client.post(
        DEVICES,
        json={"name": "tablet-x", "site_id": "0190c0de-0000-7000-8000-000000000000"},
        headers=admin_headers,
    )
    assert nowhere.status_code == 404


def test_rotating_a_device_token_at_once_revokes_the_old_one(http_client, db, site, admin_headers):
    created = http_client.post(
        DEVICES, json={"name": "tablet-s01-2", "site_id": str(site.id)}, headers=admin_headers
    ).json()
    device_id, old = created["device"]["id"], created["token"]
    rotated = http_client.post(
        f"{DEVICES}/{device_id}/token",
        json={"reason": "tablet replaced", "overlap_minutes": 0},
        headers=admin_headers,
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["token"]
    assert new != old
    assert (
        http_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {old}"}).status_code
        == 401
    )
    assert (
        http_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new}"}).status_code
        == 200
    )
    [revoked] = audit_events(db, "revoke")
    assert revoked.after["revoked_reason"] == "device token rotated: tablet replaced"
    assert len(rotated.json()["device"]["tokens"]) == 1
    # a device works at exactly one site
    two = http_client.post(
        f"{USERS}/{device_id}/sites",
        json={"site_ids": [str(site.id), str(make_site(db, _study_of(db, site), "S03").id)],
              "reason": "both"},
        headers=admin_headers,
    )  # fmt: skip
    assert two.status_code == 422
    person = make_account(db, "tess", Role.THERAPIST, [site])
    not_a_device = http_client.post(
        f"{DEVICES}/{person.id}/token", json={"reason": "nope"}, headers=admin_headers
    )
    assert not_a_device.status_code == 404


def _study_of(db, site):
    from app.models import Study

    return db.get(Study, site.study_id)
