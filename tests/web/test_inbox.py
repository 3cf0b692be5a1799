"""The alerts inbox: the caller's sites' unresolved alerts, most severe and newest first, with
the API's scope; acknowledged in place (htmx) with the alerts service; the row and table
fragments the page's live updates fetch."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.alerts import service as alerts
from app.models import Alert, AuditRecord
from app.permissions import Role
from tests.conftest import T0
from tests.factories.alerts import make_alert
from tests.web.people import form_token, person, signed_in

HTMX = {"hx-request": "true"}


@pytest.fixture
def clinician(db, two_sites):
    return person(db, "lena", Role.CLINICIAN, two_sites.a.site)


@pytest.fixture
def browser(anonymous_client, clinician):
    return signed_in(anonymous_client, clinician)


def test_the_inbox_lists_the_open_alerts_of_the_callers_sites_only(browser, two_sites):
    page = browser.get("/alerts")
    assert page.status_code == 200
    a, b = two_sites.a, two_sites.b
    assert f'id="alert-{a.alert.id}"' in page.text
    assert f'id="alert-{b.alert.id}"' not in page.text
    assert a.participant.subject_id in page.text
    assert "SYSBP 182" in page.text  # the values the finding observed
    assert "<title>(1) Alerts · Vigil</title>" in page.text
    assert 'data-stream="/api/v1/alerts/stream"' in page.text
    assert '<a href="/alerts" aria-current="page">Alerts</a>' in page.text


def test_the_most_severe_come_first_then_the_newest(browser, db, two_sites):
    a = two_sites.a
    warning, _ = make_alert(
        db,
        a.dosing_session,
        found_at=T0 + timedelta(hours=3),
        rule_id="sbp-warning",
        severity="warning",
        systolic=150,
    )
    newer, _ = make_alert(
        db,
        a.dosing_session,
        found_at=T0 + timedelta(hours=2),
        rule_id="later-crisis",
    )
    text = browser.get("/alerts").text
    order = [text.index(f'id="alert-{alert.id}"') for alert in (newer, a.alert, warning)]
    assert order == sorted(order)
    assert "<title>(3) Alerts · Vigil</title>" in text


def test_resolved_alerts_are_not_listed(browser, db, two_sites, clinician):
    alerts.resolve(db, two_sites.a.alert, clinician.id, "treated")
    page = browser.get("/alerts")
    assert f'id="alert-{two_sites.a.alert.id}"' not in page.text
    assert "No alert is waiting" in page.text
    assert "<title>Alerts · Vigil</title>" in page.text


def test_acknowledge_in_place_uses_the_alerts_service(browser, db, two_sites, clinician):
    alert = two_sites.a.alert
    token = form_token(browser, "/alerts")
    answer = browser.post(
        f"/alerts/{alert.id}/acknowledge", data={"csrf_token": token}, headers=HTMX
    )
    assert answer.status_code == 200, answer.text
    assert f'id="alert-{alert.id}"' in answer.text
    assert 'data-status="acknowledged"' in answer.text
    assert "Lena" in answer.text
    db.expire_all()
    stored = db.get(Alert, alert.id)
    assert stored.status == "acknowledged"
    assert stored.acknowledged_by_id == clinician.id
    audit = db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == str(alert.id), AuditRecord.action == "acknowledge"
        )
    ).one()
    assert audit.actor == "clinician:lena"
    again = browser.post(
        f"/alerts/{alert.id}/acknowledge", data={"csrf_token": token}, headers=HTMX
    )
    assert again.status_code == 200
    assert "Nothing was changed" in again.text


def test_acknowledge_from_a_plain_form_goes_back_to_the_inbox(browser, db, two_sites):
    alert = two_sites.a.alert
    token = form_token(browser, "/alerts")
    answer = browser.post(f"/alerts/{alert.id}/acknowledge", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/alerts"
    again = browser.post(f"/alerts/{alert.id}/acknowledge", data={"csrf_token": token})
    assert again.status_code == 409
    assert "only an open alert is acknowledged" in again.text


def test_acknowledge_without_the_form_token_is_refused(browser, db, two_sites):
    alert = two_sites.a.alert
    answer = browser.post(f"/alerts/{alert.id}/acknowledge", data={}, headers=HTMX)
    assert answer.status_code == 403
    db.expire_all()
    assert db.get(Alert, alert.id).status == "open"


def test_another_sites_alert_is_not_found(browser, db, two_sites):
    other = two_sites.b.alert
    token = form_token(browser, "/alerts")
    assert browser.get(f"/alerts/{other.id}/row").status_code == 404
    answer = browser.post(f"/alerts/{other.id}/acknowledge", data={"csrf_token": token})
    assert answer.status_code == 404
    assert "<h1>Not found</h1>" in answer.text
    db.expire_all()
    assert db.get(Alert, other.id).status == "open"


def test_the_row_and_the_rows_fragments(browser, db, two_sites, clinician):
    alert = two_sites.a.alert
    row = browser.get(f"/alerts/{alert.id}/row")
    assert row.status_code == 200
    assert row.text.strip().startswith("<tr")
    assert 'data-status="open"' in row.text and 'data-rank="2"' in row.text
    rows = browser.get("/alerts/rows")
    assert rows.text.strip().startswith('<tbody id="alert-rows">')
    assert f'id="alert-{alert.id}"' in rows.text
    alerts.resolve(db, alert, clinician.id, "treated")
    resolved = browser.get(f"/alerts/{alert.id}/row")
    assert 'data-status="resolved"' in resolved.text  # the page drops it


def test_a_coordinator_sees_visit_alerts_only_and_no_live_stream(anonymous_client, db, two_sites):
    coordinator = person(db, "casey", Role.COORDINATOR, two_sites.a.site)
    page = signed_in(anonymous_client, coordinator).get("/alerts")
    assert page.status_code == 200
    assert f'id="alert-{two_sites.a.alert.id}"' not in page.text
    assert 'data-stream=""' in page.text
    assert "Reload the page" in page.text


def test_a_pharmacist_sees_the_inbox_but_may_not_acknowledge(anonymous_client, db, two_sites):
    pharmacist = person(db, "nia", Role.PHARMACIST, two_sites.a.site)
    client = signed_in(anonymous_client, pharmacist)
    page = client.get("/alerts")
    assert f'id="alert-{two_sites.a.alert.id}"' in page.text
    assert ">Acknowledge<" not in page.text
    token = form_token(client, "/alerts")
    answer = client.post(f"/alerts/{two_sites.a.alert.id}/acknowledge", data={"csrf_token": token})
    assert answer.status_code == 403


def test_the_inbox_runs_its_own_script_only(browser):
    page = browser.get("/alerts")
    assert '<script src="/static/js/inbox.js" defer></script>' in page.text
    assert "<script>" not in page.text and 'style="' not in page.text
    assert browser.get("/static/js/inbox.js").status_code == 200
