"""The live page of a dosing session: what it shows, to whom (another site's session is a 404 page,
the arm only to the clinician who unblinded the participant), and what its forms change
through the API's services (acknowledging an alert is audited; a post without its form token is
refused)."""

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Alert, AuditRecord, Dose, User
from app.permissions import Role
from app.users import service as users
from tests.conftest import T0, TEST_PASSWORD
from tests.factories.alerts import PinnedClock
from tests.factories.dosing import make_dosing_session

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
NOW = T0 + timedelta(minutes=90)  # the initial dose was at T0 + 30 min, a reading at T0 + 60


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch, two_sites) -> PinnedClock:
    """The clock 90 min into the sessions, once the trial is built (at the real now)."""
    return PinnedClock(monkeypatch, NOW)


@pytest.fixture
def browser(anonymous_client: TestClient) -> TestClient:
    anonymous_client.follow_redirects = False
    return anonymous_client


def person(db: Session, username: str, role: Role, site) -> User:
    return users.create_user(
        db,
        username=username,
        display_name=username.replace("-", " ").title(),
        role=role,
        password=TEST_PASSWORD,
        site_ids=[site.id],
    )


def sign_in(client: TestClient, username: str) -> None:
    client.cookies.clear()
    page = client.get("/login")
    token = TOKEN.search(page.text).group(1)
    signed_in = client.post(
        "/login", data={"username": username, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 303, signed_in.text


def page_of(client: TestClient, dosing_session) -> tuple[str, str]:
    page = client.get(f"/sessions/{dosing_session.id}")
    assert page.status_code == 200, page.text
    return page.text, TOKEN.search(page.text).group(1)


def test_the_page_shows_the_session_its_schedule_alerts_and_gate(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    a = two_sites.a
    text, _ = page_of(browser, a.dosing_session)
    assert a.participant.subject_id in text
    assert f'href="/participants/{a.participant.id}"' in text
    assert "S01" in text and "EXP1" in text and "in progress" in text
    assert 'id="since-dose"' in text and NOW.isoformat() in text  # ticks from the server's now
    assert a.alert.title in text and "Acknowledge" in text
    # minute 0 of temperature was never measured; blood pressure and pulse were at minute 30
    assert re.search(r"Overdue now:.*?Temperature", text, re.S)
    assert re.search(r"Next due: <strong>[^<]*Systolic Blood Pressure", text)
    assert "Supplemental dose gate" in text and "Closed:" in text  # the window opens at T0+120
    assert f"/api/v1/exports/sessions/{a.dosing_session.id}/report.pdf" in text
    assert f"/api/v1/dosing-sessions/{a.dosing_session.id}/vital-readings" in text  # the chart's


def test_the_overview_links_the_sessions_in_progress(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    overview = browser.get("/")
    assert f'href="/sessions/{two_sites.a.dosing_session.id}"' in overview.text
    assert f'href="/sessions/{two_sites.b.dosing_session.id}"' not in overview.text


def test_another_sites_session_is_a_not_found_page(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    for path in ("", "/alerts", "/status"):
        missing = browser.get(f"/sessions/{two_sites.b.dosing_session.id}{path}")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "Not found" in missing.text
        assert two_sites.b.participant.subject_id not in missing.text


def test_the_arm_is_shown_only_to_the_clinician_who_unblinded_the_participant(
    browser, db, two_sites
):
    a = two_sites.a
    unblinder = person(db, "dr-park", Role.CLINICIAN, a.site)
    person(db, "dr-other", Role.CLINICIAN, a.site)
    person(db, "pharma", Role.PHARMACIST, a.site)
    a.participant.arm_code = "PBO"
    for username in ("dr-park", "dr-other", "pharma"):
        sign_in(browser, username)
        text, _ = page_of(browser, a.dosing_session)
        assert "PBO" not in text and "BLINDED" not in text, username
    a.participant.unblinded_by_id = unblinder.id
    a.participant.unblinded_at = NOW
    db.flush()
    sign_in(browser, "dr-other")
    assert "PBO" not in page_of(browser, a.dosing_session)[0]
    sign_in(browser, "dr-park")
    text, _ = page_of(browser, a.dosing_session)
    assert re.search(r"Arm .*?shown to you only.*?<dd>PBO</dd>", text, re.S)
    read = db.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "read_unblinded", AuditRecord.entity_id == str(a.participant.id)
        )
    ).all()
    assert read and read[-1].actor == "clinician:dr-park"


def test_acknowledging_in_place_changes_the_alert_and_is_audited(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    alert = two_sites.a.alert
    _, token = page_of(browser, two_sites.a.dosing_session)
    answer = browser.post(
        f"/sessions/{two_sites.a.dosing_session.id}/alerts/{alert.id}/acknowledge",
        data={"csrf_token": token, "note": "BP re-measured, calling the physician"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert 'id="alerts"' in answer.text and "<html" not in answer.text  # the panel alone
    assert "acknowledged" in answer.text and "BP re-measured" in answer.text
    db.expire_all()
    stored = db.get(Alert, alert.id)
    assert stored.status == "acknowledged" and stored.acknowledgement_note.startswith("BP")
    record = db.scalars(
        select(AuditRecord)
        .where(AuditRecord.entity_id == str(alert.id), AuditRecord.action == "acknowledge")
        .order_by(AuditRecord.sequence)
    ).one()
    assert record.actor == "clinician:dr-park"
    assert record.after["status"] == "acknowledged"
    again = browser.post(
        f"/sessions/{two_sites.a.dosing_session.id}/alerts/{alert.id}/acknowledge",
        data={"csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert again.status_code == 409 and "only an open alert is acknowledged" in again.text


def test_resolving_without_htmx_redirects_back_to_the_page(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    ds, alert = two_sites.a.dosing_session, two_sites.a.alert
    _, token = page_of(browser, ds)
    done = browser.post(
        f"/sessions/{ds.id}/alerts/{alert.id}/resolve",
        data={"csrf_token": token, "resolution": "Re-measured: 142/88"},
    )
    assert done.status_code == 303 and done.headers["location"].startswith(f"/sessions/{ds.id}")
    db.expire_all()
    assert db.get(Alert, alert.id).status == "resolved"
    assert "No open alerts." in page_of(browser, ds)[0]


def test_a_post_without_its_form_token_is_refused(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    ds, alert = two_sites.a.dosing_session, two_sites.a.alert
    for sent in ({}, {"csrf_token": "forged"}):
        refused = browser.post(f"/sessions/{ds.id}/alerts/{alert.id}/acknowledge", data=sent)
        assert refused.status_code == 403 and "security token" in refused.text
    db.expire_all()
    assert db.get(Alert, alert.id).status == "open"


def test_an_alert_of_another_session_is_not_answered_through_this_one(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    _, token = page_of(browser, two_sites.a.dosing_session)
    other = two_sites.b.alert  # another site's: as missing as one that does not exist
    refused = browser.post(
        f"/sessions/{two_sites.a.dosing_session.id}/alerts/{other.id}/acknowledge",
        data={"csrf_token": token},
    )
    assert refused.status_code == 404
    db.expire_all()
    assert db.get(Alert, other.id).status == "open"


def test_a_refused_dose_is_shown_on_the_form_with_what_was_typed(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    ds = two_sites.a.dosing_session
    _, token = page_of(browser, ds)
    refused = browser.post(
        f"/sessions/{ds.id}/doses",
        data={
            "csrf_token": token,
            "kind": "supplemental",
            "amount_mg": "40",
            "administered_at": "",
        },
    )
    assert refused.status_code in (409, 422), refused.text
    assert 'class="field-error"' in refused.text or 'role="alert"' in refused.text
    assert 'value="40"' in refused.text
    assert len(db.scalars(select(Dose).where(Dose.dosing_session_id == ds.id)).all()) == 1


def test_a_coordinator_sees_the_session_but_answers_no_alert(browser, db, two_sites):
    person(db, "coord", Role.COORDINATOR, two_sites.a.site)
    sign_in(browser, "coord")
    text, token = page_of(browser, two_sites.a.dosing_session)
    assert two_sites.a.alert.title not in text  # a clinical alert: not the coordinator's
    assert 'id="live-state"' not in text  # nor the clinical alert stream
    assert "Record the dose" not in text
    refused = browser.post(
        f"/sessions/{two_sites.a.dosing_session.id}/alerts/{two_sites.a.alert.id}/acknowledge",
        data={"csrf_token": token},
    )
    assert refused.status_code == 404


def test_a_therapist_attests_their_own_presence_by_giving_their_password_again(
    browser, db, two_sites
):
    therapist = person(db, "tess", Role.THERAPIST, two_sites.a.site)
    sign_in(browser, "tess")
    ds = two_sites.a.dosing_session
    _, token = page_of(browser, ds)
    form = {"csrf_token": token, "position": "lead", "present_at": "", "password": "not it"}
    refused = browser.post(f"/sessions/{ds.id}/therapist-attestations", data=form)
    assert refused.status_code == 401 and "the password is wrong" in refused.text
    db.expire_all()
    assert db.get(User, therapist.id).failed_login_count == 1  # kept: the refusal is answered
    assert db.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "attestation_refused", AuditRecord.entity_id == str(ds.id)
        )
    ).all()
    assert db.get(type(ds), ds.id).lead_therapist_id is None
    done = browser.post(
        f"/sessions/{ds.id}/therapist-attestations", data={**form, "password": TEST_PASSWORD}
    )
    assert done.status_code == 303, done.text
    db.expire_all()
    stored = db.get(type(ds), ds.id)
    assert stored.lead_therapist_id == therapist.id and stored.lead_present_at == NOW


def test_a_clinician_attests_a_therapist_present_with_a_reason(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    a = two_sites.a
    a.site.timezone = "America/Denver"
    db.flush()
    _, token = page_of(browser, a.dosing_session)
    form = {
        "csrf_token": token,
        "position": "co",
        "therapist_id": str(a.co_therapist.id),
        "present_at": "2026-02-02T01:05",  # the site's clock (UTC-7 in February)
        "reason": "",
    }
    path = f"/sessions/{a.dosing_session.id}/therapist-attestations"
    refused = browser.post(path, data=form)
    assert refused.status_code == 422
    assert "therapist_id and reason" in refused.text
    assert f'<option value="{a.co_therapist.id}" selected>' in refused.text  # as chosen
    done = browser.post(path, data={**form, "reason": "Therapist's tablet is out of battery"})
    assert done.status_code == 303, done.text
    db.expire_all()
    stored = db.get(type(a.dosing_session), a.dosing_session.id)
    assert stored.co_therapist_id == a.co_therapist.id
    assert stored.co_present_at == T0 + timedelta(minutes=5)


def test_the_signed_in_clinician_attests_the_return_to_baseline(browser, db, two_sites):
    clinician = person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    ds = two_sites.a.dosing_session
    _, token = page_of(browser, ds)
    done = browser.post(
        f"/sessions/{ds.id}/baseline-attestation",
        data={"csrf_token": token, "attested_at": "", "note": "142/88, pulse 84"},
    )
    assert done.status_code == 303, done.text
    db.expire_all()
    stored = db.get(type(ds), ds.id)
    assert stored.baseline_attested_by_id == clinician.id and stored.baseline_attested_at == NOW
    text, token = page_of(browser, ds)
    assert "142/88, pulse 84" in text and "Record the dose" not in text
    again = browser.post(
        f"/sessions/{ds.id}/baseline-attestation", data={"csrf_token": token, "attested_at": ""}
    )
    assert again.status_code == 409 and "already attested" in again.text


def test_a_planned_session_has_no_schedule_gate_or_dose_form_yet(browser, db, two_sites):
    person(db, "dr-park", Role.CLINICIAN, two_sites.a.site)
    sign_in(browser, "dr-park")
    planned = make_dosing_session(db, two_sites.a.participant, visit_code="EXP2", started_at=None)
    text, _ = page_of(browser, planned)
    assert "planned" in text and "not given yet" in text
    assert "Judged once the session has started." in text
    assert "The schedule counts from the initial dose" in text
    assert "Record the dose" not in text and "Attest presence" in text
