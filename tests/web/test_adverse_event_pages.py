"""The adverse event pages: the form records an event with the API's service (times in the
site's clock, refusals shown at their fields), the event's page shows the SAE reporting clock,
and its sign form signs with the API's signing service (both credentials again; a wrong
password is refused on the page and signs nothing)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.models import AdverseEvent, AuditRecord, Signature, User
from app.permissions import Role
from tests.conftest import T0
from tests.web.people import TEST_PASSWORD, form_token, person, signed_in

VALID = {
    "verbatim_term": "Hypertensive urgency",
    "onset_at": "2026-02-02T10:15",
    "severity": "severe",
    "ctcae_grade": "3",
    "ctcae_version": "5.0",
    "relatedness": "probable",
    "expectedness": "unexpected",
    "action_taken": "dose_withheld",
    "outcome": "recovering",
}


@pytest.fixture
def clinician(db, two_sites):
    return person(db, "lena", Role.CLINICIAN, two_sites.a.site)


@pytest.fixture
def browser(anonymous_client, clinician):
    return signed_in(anonymous_client, clinician)


def new_url(participant) -> str:
    return f"/participants/{participant.id}/adverse-events/new"


def post_event(browser, participant, **fields):
    token = form_token(browser, new_url(participant))
    return browser.post(new_url(participant), data={"csrf_token": token, **fields})


def events_of(db, participant) -> list[AdverseEvent]:
    db.expire_all()
    stmt = select(AdverseEvent).where(AdverseEvent.participant_id == participant.id)
    return list(db.scalars(stmt.order_by(AdverseEvent.created_at)))


def test_the_form_has_the_fields_of_the_create_schema(browser, two_sites):
    page = browser.get(new_url(two_sites.a.participant))
    assert page.status_code == 200
    for name in (*VALID, "end_at", "site_aware_at", "sponsor_reported_at", "dosing_session_id"):
        assert f'name="{name}"' in page.text, name
    for criterion in ("death", "life_threatening", "hospitalisation", "important_medical_event"):
        assert f'name="seriousness_criteria" value="{criterion}"' in page.text
    assert 'value="5.0"' in page.text  # the default CTCAE version
    assert f'href="/participants/{two_sites.a.participant.id}"' in page.text


def test_an_sae_is_recorded_in_site_time_and_its_page_shows_the_clock(browser, db, two_sites):
    site, participant = two_sites.a.site, two_sites.a.participant
    site.timezone = "America/Denver"
    db.flush()
    answer = post_event(
        browser,
        participant,
        **VALID,
        dosing_session_id=str(two_sites.a.dosing_session.id),
        seriousness_criteria=["hospitalisation", "life_threatening"],
    )
    assert answer.status_code == 303, answer.text
    event = events_of(db, participant)[-1]
    assert answer.headers["location"] == f"/adverse-events/{event.id}"
    assert event.onset_at.astimezone(UTC) == datetime(2026, 2, 2, 17, 15, tzinfo=UTC)
    assert event.seriousness_criteria == ["life_threatening", "hospitalisation"]
    assert event.ctcae_grade == 3 and event.dosing_session_id == two_sites.a.dosing_session.id
    page = browser.get(answer.headers["location"])
    assert page.status_code == 200
    assert "reporting clock" in page.text
    assert "left to report to the sponsor" in page.text
    assert "MST" in page.text  # due time in the site's clock
    assert "2 Feb 2026 10:15 MST" in page.text


def test_an_sae_past_its_deadline_shows_overdue(browser, db, two_sites):
    answer = post_event(
        browser,
        two_sites.a.participant,
        **VALID,
        site_aware_at="2026-02-02T11:00",
        seriousness_criteria="important_medical_event",
    )
    assert answer.status_code == 303, answer.text
    page = browser.get(answer.headers["location"])
    assert "Overdue by" in page.text
    assert "sae-overdue" in page.text


def test_a_non_serious_event_has_no_clock(browser, two_sites):
    answer = post_event(browser, two_sites.a.participant, **VALID)
    page = browser.get(answer.headers["location"])
    assert "reporting clock" not in page.text
    assert "<dt>Serious</dt><dd>no</dd>" in page.text


def test_the_schemas_refusals_are_shown_at_their_fields(browser, db, two_sites):
    fields = VALID | {"verbatim_term": "", "onset_at": "yesterday", "severity": "dreadful"}
    answer = post_event(browser, two_sites.a.participant, **fields, end_at="2026-02-02T11:00")
    assert answer.status_code == 422
    assert 'id="verbatim_term-error"' in answer.text
    assert 'id="onset_at-error">give a date and a time' in answer.text
    assert 'id="severity-error"' in answer.text
    assert 'value="2026-02-02T11:00"' in answer.text  # what was typed is kept
    assert events_of(db, two_sites.a.participant) == [two_sites.a.adverse_event]


def test_the_services_refusals_are_shown_at_their_fields(browser, db, two_sites):
    fields = VALID | {"ctcae_grade": "5"}
    answer = post_event(browser, two_sites.a.participant, **fields)
    assert answer.status_code == 422
    assert 'id="outcome-error">CTCAE grade 5 is death' in answer.text
    assert 'id="seriousness_criteria-error"' in answer.text
    assert 'value="Hypertensive urgency"' in answer.text
    assert len(events_of(db, two_sites.a.participant)) == 1


def test_another_sites_participant_and_event_are_not_found(browser, db, two_sites):
    b = two_sites.b
    assert browser.get(new_url(b.participant)).status_code == 404
    token = form_token(browser, new_url(two_sites.a.participant))
    refused = browser.post(new_url(b.participant), data={"csrf_token": token, **VALID})
    assert refused.status_code == 404
    assert len(events_of(db, b.participant)) == 1
    page = browser.get(f"/adverse-events/{b.adverse_event.id}")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text


def test_a_post_without_the_form_token_is_refused(browser, db, two_sites):
    answer = browser.post(new_url(two_sites.a.participant), data=VALID)
    assert answer.status_code == 403
    assert len(events_of(db, two_sites.a.participant)) == 1


def signatures_of(db, event) -> list[Signature]:
    db.expire_all()
    return list(db.scalars(select(Signature).where(Signature.entity_id == event.id)))


def sign(browser, event, **fields):
    url = f"/adverse-events/{event.id}"
    token = form_token(browser, url)
    return browser.post(f"{url}/signatures", data={"csrf_token": token, **fields})


def test_the_sign_form_prefills_the_username_and_asks_the_password(browser, two_sites):
    page = browser.get(f"/adverse-events/{two_sites.a.adverse_event.id}")
    assert 'id="sign-username" name="username" autocomplete="username" value="lena"' in page.text
    assert 'name="password" type="password"' in page.text
    assert 'value="review"' in page.text and 'value="approval"' in page.text


def test_a_wrong_password_is_refused_on_the_page_and_nothing_is_signed(
    browser, db, two_sites, clinician
):
    event = two_sites.a.adverse_event
    answer = sign(browser, event, meaning="review", username="lena", password="not it")
    assert answer.status_code == 401
    assert "the password is wrong; you did not sign" in answer.text
    assert 'id="sign-password-error"' in answer.text
    assert signatures_of(db, event) == []
    refused = db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == str(event.id), AuditRecord.action == "signature_refused"
        )
    ).one()  # the attempt is audited, as through the API
    assert "wrong password" in refused.reason
    assert db.get(User, clinician.id).failed_login_count == 1


def test_the_right_password_signs_and_the_signature_is_audited(browser, db, two_sites):
    event = two_sites.a.adverse_event
    answer = sign(browser, event, meaning="approval", username="lena", password=TEST_PASSWORD)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/adverse-events/{event.id}?signed=1#signatures"
    [signature] = signatures_of(db, event)
    assert signature.meaning == "approval" and signature.printed_name == "Lena"
    assert db.scalar(
        select(func.count())
        .select_from(AuditRecord)
        .where(AuditRecord.entity_type == "signatures", AuditRecord.entity_id == str(signature.id))
    )
    page = browser.get(answer.headers["location"])
    assert "Signed." in page.text and "approval" in page.text and "valid" in page.text
    again = sign(browser, event, meaning="approval", username="lena", password=TEST_PASSWORD)
    assert again.status_code == 409
    assert "you already signed" in again.text
    assert len(signatures_of(db, event)) == 1


def test_another_username_and_a_missing_meaning_are_refused(browser, db, two_sites):
    event = two_sites.a.adverse_event
    other = sign(browser, event, meaning="review", username="someone", password=TEST_PASSWORD)
    assert other.status_code == 403
    assert 'id="sign-username-error"' in other.text
    no_meaning = sign(browser, event, username="lena", password=TEST_PASSWORD)
    assert no_meaning.status_code == 422
    assert 'id="sign-meaning-error"' in no_meaning.text
    assert signatures_of(db, event) == []


def test_signing_without_the_form_token_is_refused(browser, db, two_sites):
    event = two_sites.a.adverse_event
    answer = browser.post(
        f"/adverse-events/{event.id}/signatures",
        data={"meaning": "review", "username": "lena", "password": TEST_PASSWORD},
    )
    assert answer.status_code == 403
    assert signatures_of(db, event) == []


def test_another_sites_event_cannot_be_signed(browser, db, two_sites):
    event = two_sites.b.adverse_event
    token = form_token(browser, f"/adverse-events/{two_sites.a.adverse_event.id}")
    answer = browser.post(
        f"/adverse-events/{event.id}/signatures",
        data={"csrf_token": token, "meaning": "review", "username": "lena", "password": "x"},
    )
    assert answer.status_code == 404
    assert signatures_of(db, event) == []


def test_a_therapist_sees_no_sign_form_and_may_not_sign(anonymous_client, db, two_sites):
    therapist = person(db, "tess", Role.THERAPIST, two_sites.a.site)
    client = signed_in(anonymous_client, therapist)
    event = two_sites.a.adverse_event
    page = client.get(f"/adverse-events/{event.id}")
    assert page.status_code == 200
    assert 'name="password"' not in page.text
    answer = sign(client, event, meaning="review", username="tess", password=TEST_PASSWORD)
    assert answer.status_code == 403
    assert "may not sign" in answer.text
    assert signatures_of(db, event) == []


def test_an_event_recorded_at_t0_shows_times_in_site_time(browser, db, two_sites):
    event = two_sites.a.adverse_event
    page = browser.get(f"/adverse-events/{event.id}")
    onset = (T0 + timedelta(hours=2)).strftime("%-d %b %Y %H:%M")
    assert f"{onset} UTC" in page.text


def test_an_sae_reported_after_its_deadline_says_how_late(browser, two_sites):
    answer = post_event(
        browser,
        two_sites.a.participant,
        **VALID,
        site_aware_at="2026-02-02T11:00",
        sponsor_reported_at="2026-02-04T12:30",
        seriousness_criteria="hospitalisation",
    )
    assert answer.status_code == 303, answer.text
    page = browser.get(answer.headers["location"])
    assert "reported late" in page.text
    assert "Reported to the sponsor 4 Feb 2026 12:30 UTC, overdue by 25 h 30 min" in page.text


def test_an_sae_reported_in_time_says_so(browser, two_sites):
    answer = post_event(
        browser,
        two_sites.a.participant,
        **VALID,
        site_aware_at="2026-02-02T11:00",
        sponsor_reported_at="2026-02-02T18:00",
        seriousness_criteria="hospitalisation",
    )
    page = browser.get(answer.headers["location"])
    assert ">reported</span>" in page.text
    assert "Reported to the sponsor 2 Feb 2026 18:00 UTC" in page.text
    assert "overdue" not in page.text
    assert "adverse_event.js" not in page.text  # no clock left to count down


def test_a_control_character_is_refused_at_its_field(browser, db, two_sites):
    answer = post_event(browser, two_sites.a.participant, **VALID | {"verbatim_term": "Nau\x00sea"})
    assert answer.status_code == 422
    assert 'id="verbatim_term-error">this text holds the control character U+0000' in answer.text
    assert len(events_of(db, two_sites.a.participant)) == 1
