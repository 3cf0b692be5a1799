"""A record's history page: every change from the audit trail (who, when in the site's clock,
field, old, new, reason) and its signatures, by the rules of the API's history route: another
site's record is a 404 page, a record type the role may not read a 403, blinded fields masked."""

import re

from app.permissions import Role
from tests.conftest import TEST_PASSWORD
from tests.web.signed_in import post_form
from tests.web.test_participant_pages import ARMS

API = "/api/v1"


def test_the_participants_history_lists_its_changes(web, person, two_sites, db):
    a = two_sites.a
    a.site.timezone = "America/Denver"
    db.flush()
    person(Role.COORDINATOR, a.site)
    page = web.get(f"/history/participants/{a.participant.id}")
    assert page.status_code == 200
    text = page.text
    assert "History of participant 01-001" in text
    assert f'href="/participants/{a.participant.id}"' in text
    assert "times in America/Denver" in text
    assert re.search(r"\d{2}:\d{2} (MST|MDT)", text)  # site-local with the zone
    assert ">Create<" in text or ">create<" in text
    assert ">subject_id</th>" in text and "01-001" in text
    assert ">status</th>" in text and "enrolled" in text and "randomised" in text


def test_a_reschedule_shows_in_the_visits_history_with_its_reason(web, person, two_sites):
    a = two_sites.a
    visit = a.visits["PREP3"]
    before = visit.scheduled_on.isoformat()
    person(Role.COORDINATOR, a.site)
    path = f"/participants/{a.participant.id}"
    moved = post_form(
        web,
        f"/visits/{visit.id}/reschedule",
        {"scheduled_on": "2026-01-24", "reason": "room booked twice"},
        path,
    )
    assert moved.status_code == 303
    text = web.get(f"/history/visits/{visit.id}").text
    assert "History of visit PREP3 of participant 01-001" in text
    assert "room booked twice" in text
    row = re.findall(r">scheduled_on</th>.*?</tr>", text, re.S)[-1]
    assert re.search(f">{before}<.*>2026-01-24<", row)
    assert "(coordinator)" in text  # who


def test_another_sites_record_has_no_history_page(web, person, two_sites):
    a = two_sites.a
    person(Role.COORDINATOR, two_sites.b.site)
    for entity_type, entity_id in (
        ("participants", a.participant.id),
        ("visits", a.visits["PREP1"].id),
        ("adverse_events", a.adverse_event.id),
    ):
        page = web.get(f"/history/{entity_type}/{entity_id}")
        assert page.status_code == 404, entity_type
        assert "<h1>Not found</h1>" in page.text
        assert "01-001" not in page.text


def test_a_record_type_the_role_may_not_read_is_refused(web, person, two_sites):
    person(Role.COORDINATOR, two_sites.a.site)
    page = web.get(f"/history/therapist_notes/{two_sites.a.note.id}")
    assert page.status_code == 403
    assert "<h1>Not allowed</h1>" in page.text
    assert web.get(f"/history/nonsense/{two_sites.a.note.id}").status_code == 404


def test_a_blinded_reader_sees_the_arm_masked_and_the_pharmacist_sees_it(
    web, person, two_sites, db
):
    participant = two_sites.a.participant
    path = f"/history/participants/{participant.id}"
    for role in (Role.COORDINATOR, Role.THERAPIST, Role.CLINICIAN):
        person(role, two_sites.a.site)
        text = web.get(path).text
        rows = re.findall(r">arm_code</th>.*?</tr>", text, re.S)
        assert any("BLINDED" in row for row in rows), role
        assert not ARMS.search(text), role
    person(Role.PHARMACIST, two_sites.a.site)
    assert participant.arm_code in web.get(path).text


def test_the_signatures_of_a_signed_record_are_shown(web, person, two_sites, client_as):
    event = two_sites.a.adverse_event
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])
    signed = clinician.post(
        f"{API}/adverse-events/{event.id}/signatures",
        json={"meaning": "review", "username": clinician.user.username, "password": TEST_PASSWORD},
    )
    assert signed.status_code == 201, signed.text
    person(Role.CLINICIAN, two_sites.a.site)
    text = web.get(f"/history/adverse_events/{event.id}").text
    assert "History of adverse event of participant 01-001" in text
    assert '<h2 id="signatures-heading">Signatures</h2>' in text
    assert clinician.user.display_name in text and "valid for this version" in text


def test_the_history_pages_on(web, person, two_sites):
    person(Role.COORDINATOR, two_sites.a.site)
    path = f"/history/participants/{two_sites.a.participant.id}"
    first = web.get(path, params={"limit": 1})
    link = re.search(r'href="(/history/participants/[^"?]+\?cursor=[^"]+)"', first.text)
    assert link is not None
    second = web.get(link.group(1))
    assert second.status_code == 200 and "Back to the first changes" in second.text


def test_the_admin_reads_a_history_without_a_link_to_the_participant(web, person, two_sites):
    person(Role.ADMIN)
    page = web.get(f"/history/participants/{two_sites.a.participant.id}")
    assert page.status_code == 200
    assert f'href="/participants/{two_sites.a.participant.id}"' not in page.text
    assert "times in UTC" in page.text
