"""The demo's API as the browser tests use it beside the page: a bearer token of a demo
account, the dosing session in progress at S01 and its participant, a vital reading posted."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from app.demo.seed import DEMO_PASSWORD


def token_of(base_url: str, username: str) -> str:
    answer = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def live_session(base_url: str, token: str) -> dict[str, Any]:
    """The dosing session in progress at S01 (the demo has one)."""
    answer = httpx.get(
        f"{base_url}/api/v1/dosing-sessions",
        params={"status": "in_progress"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    [found] = answer.json()["items"]
    return dict(found)


def post_reading(
    base_url: str, token: str, dosing_session_id: str, observations: list[dict[str, Any]]
) -> None:
    answer = httpx.post(
        f"{base_url}/api/v1/dosing-sessions/{dosing_session_id}/vital-readings",
        json={
            "id": str(uuid.uuid4()),
            "measured_at": datetime.now(UTC).isoformat(),
            "observations": observations,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code in (200, 201), answer.text


def resolve_alerts_of_rule(base_url: str, token: str, rule_id: str) -> None:
    """Resolve the unresolved alerts of a rule (another test may have left one), so that the
    next finding of the rule opens a new alert."""
    headers = {"Authorization": f"Bearer {token}"}
    for status in ("open", "acknowledged"):
        listed = httpx.get(
            f"{base_url}/api/v1/alerts", params={"status": status, "limit": 500}, headers=headers
        )
        assert listed.status_code == 200, listed.text
        for alert in listed.json()["items"]:
            if alert["rule_id"] == rule_id:
                done = httpx.post(
                    f"{base_url}/api/v1/alerts/{alert['id']}/resolve",
                    json={"resolution": "closed by a browser test before its own"},
                    headers=headers,
                )
                assert done.status_code == 200, done.text
