"""Sending one event on one channel: a webhook POST, or an e-mail through the SMTP server.

``Sender.send`` returns None when the receiver took it (a 2xx answer; the SMTP server accepted
the message) and otherwise what went wrong, in a line an admin can act on. It raises nothing for a
receiver's failure: the dispatcher retries. A sender keeps one HTTP client for its life (one TLS
context, connections kept alive): building a client per webhook loads the CA bundle each time,
which the soak bench saw take half the server's CPU while alerts opened.
"""

import smtplib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from app.config import Settings
from app.models.notification import Channel
from app.notifications import messages


@dataclass(frozen=True)
class Target:
    channel: str
    address: str  # the webhook's URL, the e-mail address
    secret: str | None


def _webhook(
    client: httpx.Client, target: Target, event: dict[str, Any], settings: Settings
) -> str | None:
    body = messages.body_of(event)
    headers = messages.webhook_headers(target.secret or "", event["id"], int(time.time()), body)
    try:
        answer = client.post(target.address, content=body, headers=headers)
    except httpx.TimeoutException:
        return f"no answer within {settings.outbox_timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        return f"could not reach the receiver: {exc}"
    if answer.is_success:
        return None
    return f"the receiver answered {answer.status_code}: {answer.text[:200]}"


def _email(target: Target, event: dict[str, Any], settings: Settings) -> str | None:
    if not settings.smtp_host:
        return "no SMTP server is configured (VIGIL_SMTP_HOST)"
    message = messages.email(event, settings.smtp_from, target.address, settings.public_url)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.outbox_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return f"the SMTP server did not take it: {exc}"
    return None


class Sender:
    """Sends events on their channels; thread-safe; close it when done."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http = httpx.Client(timeout=settings.outbox_timeout_seconds)

    def send(self, target: Target, event: dict[str, Any]) -> str | None:
        if target.channel == Channel.WEBHOOK:
            return _webhook(self._http, target, event, self._settings)
        return _email(target, event, self._settings)

    def close(self) -> None:
        self._http.close()
