"""The outbox: an alert change someone subscribed to writes its event and deliveries in its own
transaction (and a change undone writes none); the admin's subscription and dead-letter API;
sending, retrying and giving up, on both databases; e-mail through a local SMTP server."""

import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.config import Settings
from app.models import (
    Alert,
    AuditRecord,
    DosingSession,
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
    Site,
    Study,
)
from app.notifications import channels, dispatcher, messages, outbox
from app.permissions import Role
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study
from tests.notifications.receiver import Receiver, serving
from tests.server_process import free_port

API = "/api/v1"
HOOK = "https://hooks.example.org/vigil"


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: T0 + timedelta(minutes=25))


@pytest.fixture
def site(db: Session) -> Site:
    return make_site(db, make_study(db))


@pytest.fixture
def dosing(db: Session, site: Site) -> DosingSession:
    return make_dosing_session(db, make_participant(db, site, stage="randomised"))


def _hypertensive(client, dosing_session: DosingSession) -> None:
    reading = {
        "id": str(uuid.uuid4()),
        "measured_at": (T0 + timedelta(minutes=20)).isoformat(),
        "observations": [{"code": "SYSBP", "value": 172, "unit": "mmHg"}],
    }
    posted = client.post(f"{API}/dosing-sessions/{dosing_session.id}/vital-readings", json=reading)
    assert posted.status_code == 201, posted.text


def _subscribe(client, **body: Any) -> dict[str, Any]:
    created = client.post(f"{API}/notification-subscriptions", json={"url": HOOK} | body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def _events(db: Session) -> list[NotificationEvent]:
    return list(db.scalars(select(NotificationEvent).order_by(NotificationEvent.id)))


def test_a_webhook_subscription_shows_its_secret_once_and_audits_without_it(client, db: Session):
    created = _subscribe(client, channel="webhook", label="on-call pager")
    assert created["secret"].startswith("whsec_")
    listed = client.get(f"{API}/notification-subscriptions").json()["items"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0]
    audit = db.scalars(select(AuditRecord).where(AuditRecord.entity_id == created["id"])).one()
    assert audit.action == "create" and "secret" not in (audit.after or {})
    assert audit.after["target"] == HOOK


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"channel": "webhook", "url": "http://hooks.example.org/x"}, "https"),
        ({"channel": "email", "email": "oncall@example.org", "url": None}, "SMTP"),
        ({"channel": "email", "email": "not an address", "url": None}, "email"),
        ({"channel": "webhook", "url": None}, "url"),
    ],
)
def test_a_subscription_it_cannot_serve_is_refused_saying_why(client, body, says):
    refused = client.post(f"{API}/notification-subscriptions", json=body)
    assert refused.status_code in (400, 422), refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert says in refused.text


def test_only_admins_manage_subscriptions(client_as, site: Site):
    for role, sites in ((Role.CLINICIAN, [site]), (Role.MEDICAL_MONITOR, []), (Role.SPONSOR, [])):
        http = client_as(role, sites)
        assert http.get(f"{API}/notification-subscriptions").status_code == 403
    admin = client_as(Role.ADMIN)
    body = {"channel": "webhook", "url": HOOK}
    assert admin.post(f"{API}/notification-subscriptions", json=body).status_code == 201


def test_an_alert_writes_its_event_and_deliveries_with_it_for_the_matching_subscriptions(
    client, db: Session, site: Site, dosing: DosingSession, pinned
):
    other_site = make_site(db, db.get_one(Study, site.study_id), "S02")
    everyone = _subscribe(client, channel="webhook")
    this_site = _subscribe(client, channel="webhook", site_id=str(site.id), role="clinician")
    _subscribe(client, channel="webhook", site_id=str(other_site.id))
    _subscribe(client, channel="webhook", role="medical_monitor")  # not escalated yet
    _subscribe(client, channel="webhook", event_types=["alert.resolved"])
    _hypertensive(client, dosing)

    (event,) = _events(db)
    alert = db.get_one(Alert, event.alert_id)
    assert event.type == "alert.opened" and alert.severity == "critical"
    told = set(
        db.scalars(
            select(NotificationDelivery.subscription_id).where(
                NotificationDelivery.event_id == event.id
            )
        )
    )
    assert told == {uuid.UUID(everyone["id"]), uuid.UUID(this_site["id"])}
    data = event.payload["data"]
    assert data["alert_id"] == str(alert.id) and data["addressed_to"] == "clinician"
    assert data["site_code"] == "S01" and data["rule_id"] == alert.rule_id
    participant_arm = alert.participant_id  # the payload names the participant by study code
    assert data["subject_id"] and str(participant_arm) == data["participant_id"]
    assert "arm" not in str(event.payload) and alert.message not in str(event.payload)

    _hypertensive(client, dosing)  # the same finding again: another occurrence, nobody told
    assert len(_events(db)) == 1


def test_an_alert_change_a_savepoint_undid_tells_nobody(
    client, db: Session, dosing: DosingSession, pinned
):
    _subscribe(client, channel="webhook", event_types=["alert.acknowledged"])
    _hypertensive(client, dosing)
    alert = db.scalars(select(Alert)).one()
    savepoint = db.begin_nested()
    alert.status = "acknowledged"
    db.info["audit_action"] = "acknowledge"
    db.flush()
    savepoint.rollback()
    db.info.pop("audit_action", None)
    db.commit()
    assert _events(db) == []


def _settings(**overrides: Any) -> Settings:
    return Settings(outbox_retry_seconds=0.01, outbox_max_attempts=3, **overrides)


def _one_delivery(db: Session, receiver: Receiver) -> NotificationDelivery:
    subscription = NotificationSubscription(
        channel="webhook",
        target=receiver.url,
        secret=receiver.secret,
        event_types=["alert.opened"],
    )
    db.add(subscription)
    db.flush()
    return subscription  # type: ignore[return-value]


def _attempt(db: Session, settings: Settings, hours: int = 1) -> list[str]:
    """Send what is due ``hours`` from now (every pause so far is over), as the dispatcher
    does; the statuses of the deliveries sent."""
    now = clock.utcnow() + timedelta(hours=hours)
    claims = dispatcher.claim(db, now, settings)
    sender = channels.Sender(settings)
    try:
        return [
            dispatcher.record(db, c, sender.send(c.target, c.event), now, settings) for c in claims
        ]
    finally:
        sender.close()


def test_a_failing_receiver_is_tried_again_and_given_up_on_then_an_admin_sends_it_again(
    client, db: Session, dosing: DosingSession, pinned
):
    answers = iter([500, 502, 503, 200])
    with serving(Receiver(secret=messages.new_secret(), script=lambda n: next(answers))) as hook:
        _one_delivery(db, hook)
        _hypertensive(client, dosing)
        settings = _settings()
        assert _attempt(db, settings, 1) == ["pending"]
        assert _attempt(db, settings, 2) == ["pending"]
        assert _attempt(db, settings, 3) == ["dead"]
        assert _attempt(db, settings, 4) == []  # dead: nobody sends it by themselves

        (dead,) = client.get(f"{API}/notification-deliveries", params={"status": "dead"}).json()[
            "items"
        ]
        assert dead["attempts"] == 3 and "503" in dead["last_error"]
        again = client.post(f"{API}/notification-deliveries/{dead['id']}/retry")
        assert again.status_code == 200 and again.json()["status"] == "pending"
        assert client.post(f"{API}/notification-deliveries/{dead['id']}/retry").status_code == 409
        assert _attempt(db, settings, 5) == ["delivered"]

    assert [r.answered for r in hook.requests] == [500, 502, 503, 200]
    assert len({r.event_id for r in hook.requests}) == 1  # one event id on every attempt
    assert all(r.signed for r in hook.requests)
    requeued = db.scalars(select(AuditRecord).where(AuditRecord.action == "requeue")).one()
    assert requeued.entity_id == dead["id"] and requeued.after["attempts"] == 3


def test_a_leased_delivery_is_not_claimed_twice(client, db: Session, dosing, pinned):
    with serving(Receiver(secret=messages.new_secret())) as hook:
        _one_delivery(db, hook)
        _hypertensive(client, dosing)
        now = clock.utcnow()
        settings = _settings()
        assert len(dispatcher.claim(db, now, settings)) == 1
        assert dispatcher.claim(db, now, settings) == []  # held by the first
        later = now + timedelta(seconds=settings.outbox_lease_seconds + 1)
        (again,) = dispatcher.claim(db, later, settings)  # its sender died: the lease ran out
        assert again.attempts == 2


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_an_email_is_sent_through_the_smtp_server_with_the_event_as_its_message_id(
    client, db: Session, dosing: DosingSession, pinned, smtp, monkeypatch
):
    port, inbox = smtp
    settings = _settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="vigil@site.example")
    monkeypatch.setattr("app.notifications.service.get_settings", lambda: settings)
    _subscribe(client, channel="email", email="oncall-s01@site.example", url=None)
    _hypertensive(client, dosing)
    assert _attempt(db, settings) == ["delivered"]

    (raw,) = inbox.messages
    mail = message_from_bytes(raw)
    (event,) = _events(db)
    assert mail["Message-ID"] == f"<{event.id}@site.example>"
    assert mail["To"] == "oncall-s01@site.example"
    assert mail["Subject"].startswith("[Vigil] S01: critical alert: ")
    body = mail.get_payload()
    assert event.payload["data"]["subject_id"] in body
    assert "arm" not in body.lower()


def test_an_unreachable_smtp_server_fails_the_attempt_saying_so():
    settings = _settings(smtp_host="127.0.0.1", smtp_port=1, outbox_timeout_seconds=1)
    event = {"id": str(uuid.uuid4()), "type": "alert.opened", "created_at": T0.isoformat()}
    event["data"] = {
        "severity": "critical",
        "site_code": "S01",
        "title": "t",
        "subject_id": "01-001",
        "rule_id": "r",
        "addressed_to": "clinician",
        "first_found_at": T0.isoformat(),
        "acknowledge_by": None,
        "alert_id": str(uuid.uuid4()),
    }
    error = channels.Sender(settings).send(channels.Target("email", "a@b.example", None), event)
    assert error is not None and "SMTP" in error


# --- which alert changes tell anyone (property) -------------------------------------------------

_ACTIONS = st.sampled_from(["create", "update", "acknowledge", "resolve", "escalate"])
_SEVERITIES = st.sampled_from(["info", "warning", "critical"])


@st.composite
def _records(draw: st.DrawFn) -> list[AuditRecord]:
    alerts = [str(uuid.uuid4()) for _ in range(draw(st.integers(1, 3)))]
    records = []
    for _ in range(draw(st.integers(0, 8))):
        before, after = draw(_SEVERITIES), draw(_SEVERITIES)
        records.append(
            AuditRecord(
                entity_type=draw(st.sampled_from(["alerts", "alerts", "vital_readings"])),
                entity_id=draw(st.sampled_from(alerts)),
                action=draw(_ACTIONS),
                before={"severity": before},
                after={"severity": after} if draw(st.booleans()) else {"occurrences": 2},
            )
        )
    return records


@given(_records())
def test_each_alert_tells_each_kind_of_change_once_and_an_opened_one_only_that(records):
    changes = outbox.alert_changes(records)
    for alert_id, kinds in changes.items():
        assert len(kinds) == len(set(kinds)) and kinds
        mine = [r for r in records if r.entity_id == alert_id and r.entity_type == "alerts"]
        if mine[0].action == "create":
            assert kinds == ["alert.opened"]
        for kind in kinds:
            assert kind in outbox.EVENT_TYPES
        if "alert.severity_raised" in kinds:
            assert any(
                r.action == "update"
                and "severity" in r.after
                and outbox.SEVERITY_RANK[r.after["severity"]]
                > outbox.SEVERITY_RANK[r.before["severity"]]
                for r in mine
            )
    assert all(r.entity_type != "alerts" or r.entity_id in changes or r.action == "update"
               for r in records)  # fmt: skip
