"""What an alert event tells, and how it is put on the wire.

The payload names the alert, its site and the participant's study code, the protocol's title
for the rule and the ids of the records behind it; nothing else. No arm (nor anything else
unblinding), no free text a person wrote (a note, an acknowledgement, an adverse event's
verbatim term), no values of the finding: a receiver that needs more follows the link into Vigil,
where access is checked.

Webhooks are signed as Standard Webhooks (https://www.standardwebhooks.com) sign them:
``webhook-id`` (the event's id, also sent as ``Idempotency-Key``), ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of
``{id}.{timestamp}.{body}`` under the subscription's secret (``whsec_`` and base64 key bytes), so
a receiver can check it with any Standard Webhooks library. An e-mail's ``Message-ID`` is made of
the event's id, the same on every retry.
"""

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from app.models import Alert

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form of a secret, not one


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def payload(
    event_id: uuid.UUID,
    event_type: str,
    created_at: datetime,
    alert: Alert,
    *,
    site_code: str,
    subject_id: str,
    addressed_to: str,
) -> dict[str, Any]:
    finding = alert.finding or {}
    return {
        "id": str(event_id),
        "type": event_type,
        "created_at": created_at.isoformat(),
        "data": {
            "alert_id": str(alert.id),
            "status": alert.status,
            "severity": alert.severity,
            "kind": alert.kind,
            "rule_id": alert.rule_id,
            "title": alert.title,
            "addressed_to": addressed_to,
            "escalation_level": alert.escalation_level,
            "site_id": str(alert.site_id),
            "site_code": site_code,
            "subject_id": subject_id,
            "participant_id": str(alert.participant_id),
            "dosing_session_id": _iso_id(alert.dosing_session_id),
            "first_found_at": _iso(alert.first_found_at),
            "severity_since": _iso(alert.severity_since),
            "acknowledge_by": _iso(alert.acknowledge_by),
            "evidence": [str(each) for each in finding.get("evidence", [])],
        },
    }


def _iso_id(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, event_id, timestamp, body),
        "idempotency-key": event_id,
        "user-agent": "Vigil-Notifications/1",
    }


_SUBJECTS = {
    "alert.opened": "{severity} alert",
    "alert.severity_raised": "alert now {severity}",
    "alert.escalated": "{severity} alert escalated to the medical monitor",
    "alert.disproved": "{severity} alert disproved",
    "alert.acknowledged": "{severity} alert acknowledged",
    "alert.resolved": "{severity} alert resolved",
}


def link(public_url: str | None, alert_id: str) -> str | None:
    return f"{public_url.rstrip('/')}/alerts#alert-{alert_id}" if public_url else None


def email(
    event: dict[str, Any], sender: str, recipient: str, public_url: str | None
) -> EmailMessage:
    data = event["data"]
    what = _SUBJECTS.get(event["type"], "alert changed").format(severity=data["severity"])
    message = EmailMessage()
    message["Subject"] = f"[Vigil] {data['site_code']}: {what}: {data['title']}"
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(datetime.fromisoformat(event["created_at"]))
    domain = sender.rpartition("@")[2] or "vigil.invalid"
    message["Message-ID"] = f"<{event['id']}@{domain}>"
    message["X-Vigil-Event-Id"] = event["id"]
    message["X-Vigil-Event-Type"] = event["type"]
    lines = [
        f"{what.capitalize()} at site {data['site_code']}, participant {data['subject_id']}.",
        "",
        f"Rule: {data['title']} ({data['rule_id']})",
        f"Addressed to: {data['addressed_to'].replace('_', ' ')}",
        f"Found: {data['first_found_at']}",
    ]
    if data["acknowledge_by"] and event["type"] in ("alert.opened", "alert.severity_raised"):
        lines.append(f"Acknowledge by: {data['acknowledge_by']}")
    url = link(public_url, data["alert_id"])
    lines += ["", f"Open it in Vigil: {url}" if url else f"Alert id: {data['alert_id']}"]
    message.set_content("\n".join(lines) + "\n")
    return message
