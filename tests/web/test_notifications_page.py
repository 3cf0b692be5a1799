"""The notifications page: an admin sees the outbox, the dead letters with their last error and
the subscriptions, and sends a dead letter again (audited, once); nobody else sees the page."""

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.models import (
    AuditRecord,
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
)
from app.models.notification import DeliveryStatus
from app.permissions import Role
from tests.factories.alerts import make_alert

HOOK = "https://hooks.example.org/vigil"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _dead_letter(db: Session, two_sites) -> NotificationDelivery:
    """A webhook subscription, an alert it was told of, and that delivery given up on after
    three failed attempts, as the dispatcher leaves it (tests/notifications/test_outbox.py)."""
    db.add(
        NotificationSubscription(
            channel="webhook",
            target=HOOK,
            secret="whsec_dGVzdA==",
            event_types=["alert.opened"],
            label="on-call pager",
        )
    )
    db.flush()
    alert, _ = make_alert(
        db, two_sites.a.dosing_session, found_at=clock.utcnow() - timedelta(minutes=5)
    )
    db.commit()  # the outbox writes the event and its delivery as the alert commits
    delivery = db.scalars(
        select(NotificationDelivery)
        .join(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
        .where(NotificationEvent.alert_id == alert.id)
    ).one()
    for other in db.scalars(
        select(NotificationDelivery).where(NotificationDelivery.id != delivery.id)
    ):
        other.status = DeliveryStatus.DELIVERED.value  # the fixture's own alerts, told already
    delivery.status = DeliveryStatus.DEAD.value
    delivery.attempts = 3
    delivery.last_attempt_at = clock.utcnow()
    delivery.last_error = "the receiver answered 503"
    db.flush()
    return delivery


def _page(web: TestClient) -> str:
    page = web.get("/notifications")
    assert page.status_code == 200, page.text
    return page.text


def test_an_admin_sees_the_dead_letter_its_error_and_the_subscription(web, person, db, two_sites):
    delivery = _dead_letter(db, two_sites)
    person(Role.ADMIN)
    text = _page(web)
    assert 'id="count-dead">1<' in text and 'id="count-pending">0<' in text
    row = text[text.index(f'id="delivery-{delivery.id}"') :]
    row = row[: row.index("</tr>")]
    assert "alert.opened" in row and "Hypertensive crisis" in row
    assert f"webhook: {HOOK}" in row and "the receiver answered 503" in row
    assert f'action="/notifications/deliveries/{delivery.id}/retry"' in row
    assert "on-call pager" in text and "all sites" in text
    assert 'href="/notifications" aria-current="page"' in text


def test_sending_a_dead_letter_again_queues_it_audited_and_a_second_try_is_refused(
    web, person, db, two_sites
):
    delivery = _dead_letter(db, two_sites)
    admin = person(Role.ADMIN)
    token = TOKEN.search(_page(web)).group(1)  # type: ignore[union-attr]
    sent = web.post(f"/notifications/deliveries/{delivery.id}/retry", data={"csrf_token": token})
    assert sent.status_code == 303
    assert sent.headers["location"] == "/notifications?sent_again=1#dead-letters"
    db.refresh(delivery)
    assert delivery.status == "pending" and delivery.attempts == 0
    assert delivery.requeued_by_id == admin.id
    requeued = db.scalars(select(AuditRecord).where(AuditRecord.action == "requeue")).one()
    assert requeued.entity_id == str(delivery.id) and requeued.actor == f"admin:{admin.username}"
    after = web.get(sent.headers["location"]).text
    assert "Sent again" in after and 'id="no-dead"' in after and 'id="count-pending">1<' in after

    again = web.post(f"/notifications/deliveries/{delivery.id}/retry", data={"csrf_token": token})
    assert again.status_code == 409
    assert "Not sent again" in again.text and "only a dead one is sent again" in again.text
    assert len(db.scalars(select(AuditRecord).where(AuditRecord.action == "requeue")).all()) == 1


def test_a_send_again_without_the_pages_token_changes_nothing(web, person, db, two_sites):
    delivery = _dead_letter(db, two_sites)
    person(Role.ADMIN)
    refused = web.post(f"/notifications/deliveries/{delivery.id}/retry", data={})
    assert refused.status_code == 403
    db.refresh(delivery)
    assert delivery.status == "dead" and delivery.attempts == 3


def test_nobody_but_an_admin_opens_the_page_or_sends_again(web, person, db, two_sites):
    delivery = _dead_letter(db, two_sites)
    for role, sites in ((Role.MEDICAL_MONITOR, ()), (Role.COORDINATOR, (two_sites.a.site,))):
        person(role, *sites)
        assert 'href="/notifications"' not in web.get("/").text
        assert web.get("/notifications").status_code == 403
        token = TOKEN.search(web.get("/").text)  # a valid form token: refused by role, not CSRF
        assert token is not None
        refused = web.post(
            f"/notifications/deliveries/{delivery.id}/retry", data={"csrf_token": token.group(1)}
        )
        assert refused.status_code == 403 and "may not do this" in refused.text
    db.refresh(delivery)
    assert delivery.status == "dead"
