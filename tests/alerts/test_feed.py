"""A stream's subscription: only its sites' events, and cut off (not silently thinned) when its
client falls too far behind, so the client reconnects and catches up from the event log."""

import uuid
from datetime import UTC, datetime

from app.alerts.feed import Subscription
from app.alerts.history import AlertEvent

SITE_A, SITE_B = uuid.uuid4(), uuid.uuid4()


def _event(n: int, site: uuid.UUID = SITE_A) -> AlertEvent:
    return AlertEvent(
        id=n,
        type="alert.updated",
        occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
        actor="device:tablet",
        site_id=site,
        changes={},
        alert={},
    )


def test_a_subscription_takes_only_the_events_of_its_sites():
    subscription = Subscription(frozenset({SITE_A}), since=0, maxsize=10)
    for event in (_event(1), _event(2, SITE_B), _event(3)):
        subscription.offer(event)
    assert [subscription.queue.get_nowait().id for _ in range(2)] == [1, 3]
    assert subscription.queue.empty()


def test_a_subscription_of_every_site_takes_them_all():
    subscription = Subscription(None, since=0, maxsize=10)
    subscription.offer(_event(1, SITE_B))
    assert subscription.queue.get_nowait().id == 1


def test_a_stream_that_falls_behind_is_ended_rather_than_thinned():
    subscription = Subscription(None, since=0, maxsize=3)
    for n in range(1, 6):
        subscription.offer(_event(n))
    assert subscription.cut_off
    assert subscription.queue.get_nowait() is None  # the stream ends here; nothing half-sent
    assert subscription.queue.empty()
