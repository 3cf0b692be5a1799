"""The participant list and a participant's page: the API's scope (another site's participant
is a 404 page), the actions of the caller's role on the API's services, each audited, refusals
shown on the page with what was typed, and never an arm for a blinded reader."""

import re
from datetime import timedelta

import pytest

from app.models import Participant, Visit
from app.participants import service as participants
from app.participants.schemas import VisitOutcome
from app.permissions import ALL_SITES_ROLES, Role
from tests.factories.trial import make_participant
from tests.web.signed_in import audit_of, post_form
from tests.web.test_signin import form_token

ARMS = re.compile(r"\b(MDMA|PBO)\b")


# --- the list -----------------------------------------------------------------------------------


def test_the_list_holds_the_participants_of_the_callers_sites_only(web, person, two_sites):
    person(Role.COORDINATOR, two_sites.a.site)
    page = web.get("/participants")
    assert page.status_code == 200
    assert "01-001" in page.text and "02-001" not in page.text
    assert f'href="/participants/{two_sites.a.participant.id}"' in page.text
    assert 'aria-current="page">Participants<' in page.text
    assert "SCREEN · Screening and enrolment" in page.text  # the next visit
    assert not ARMS.search(page.text)


def test_the_list_filters_by_site_and_status(web, person, two_sites, db):
    make_participant(db, two_sites.a.site, "01-009")  # screening
    person(Role.MEDICAL_MONITOR)
    assert "02-001" in web.get("/participants").text
    by_site = web.get("/participants", params={"site": str(two_sites.b.site.id)})
    assert "02-001" in by_site.text and "01-001" not in by_site.text
    screening = web.get("/participants", params={"status": "screening"})
    assert "01-009" in screening.text and "01-001" not in screening.text
    assert "none scheduled" in screening.text
    both = web.get(
        "/participants", params={"site": str(two_sites.b.site.id), "status": "screening"}
    )
    assert "matches the filter" in both.text
    assert web.get("/participants", params={"status": "asleep"}).status_code == 422


def test_a_site_filter_of_another_site_is_refused(web, person, two_sites):
    person(Role.COORDINATOR, two_sites.a.site)
    refused = web.get("/participants", params={"site": str(two_sites.b.site.id)})
    assert refused.status_code == 422
    assert "not one of your sites" in refused.text


def test_the_list_pages_on(web, person, two_sites, db):
    for n in range(2, 5):
        make_participant(db, two_sites.a.site, f"01-00{n}")
    person(Role.COORDINATOR, two_sites.a.site)
    first = web.get("/participants", params={"limit": 2})
    assert "01-001" in first.text and "01-003" not in first.text
    link = re.search(r'href="(/participants\?[^"]*cursor=[^"]+)"', first.text).group(1)
    second = web.get(link.replace("&amp;", "&"))
    assert "01-003" in second.text and "01-001" not in second.text


def test_the_admin_has_no_participant_list(web, person, two_sites):
    person(Role.ADMIN)
    assert "/participants" not in web.get("/").text
    assert web.get("/participants").status_code == 403


# --- one participant ----------------------------------------------------------------------------


def test_the_page_shows_the_schedule_sessions_events_and_assessments(web, person, two_sites):
    a = two_sites.a
    person(Role.CLINICIAN, a.site)
    page = web.get(f"/participants/{a.participant.id}")
    assert page.status_code == 200
    text = page.text
    assert "Participant 01-001" in text and "randomised" in text
    for visit in a.visits.values():
        assert f'id="visit-{visit.code}"' in text
        assert f'href="/history/visits/{visit.id}"' in text
    assert f'href="/history/participants/{a.participant.id}"' in text
    assert f'href="/sessions/{a.dosing_session.id}"' in text
    assert "80 mg" in text
    assert f'href="/adverse-events/{a.adverse_event.id}"' in text and "Headache" in text
    assert "C-SSRS screen" in text
    assert f'href="/notes/{a.note.id}"' in text  # a clinician reads notes
    assert f'href="/participants/{a.participant.id}/adverse-events/new"' in text
    assert f'href="/participants/{a.participant.id}/notes/new"' in text
    assert "UTC" in text  # times in the site's clock, with its zone
    assert not ARMS.search(text)
    # a clinician may move a visit, but not enrol, randomise or withdraw
    assert "/reschedule" in text and "/withdraw" not in text and "/randomise" not in text


def test_a_coordinator_sees_no_notes_and_writes_none(web, person, two_sites):
    a = two_sites.a
    person(Role.COORDINATOR, a.site)
    text = web.get(f"/participants/{a.participant.id}").text
    assert f"/notes/{a.note.id}" not in text and "/notes/new" not in text
    assert "Calm through the session" not in text
    assert f"/participants/{a.participant.id}/withdraw" in text  # the coordinator's action


def test_a_read_only_monitor_sees_no_action(web, person, two_sites):
    person(Role.MEDICAL_MONITOR)
    text = web.get(f"/participants/{two_sites.b.participant.id}").text
    assert '<form method="post" action="/participants' not in text
    assert "/reschedule" not in text and "/adverse-events/new" not in text


def test_another_sites_participant_is_a_404_page(web, person, two_sites):
    person(Role.COORDINATOR, two_sites.b.site)
    page = web.get(f"/participants/{two_sites.a.participant.id}")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text
    assert "01-001" not in page.text
    visit = two_sites.a.visits["PREP1"]
    token = form_token(web, "/participants")
    moved = web.post(
        f"/visits/{visit.id}/reschedule",
        data={"scheduled_on": "2026-03-01", "reason": "clinic closed", "csrf_token": token},
    )
    assert moved.status_code == 404


def test_the_pharmacist_sees_the_arm_and_the_read_is_audited(web, person, two_sites, db):
    participant = two_sites.a.participant
    person(Role.PHARMACIST, two_sites.a.site)
    text = web.get(f"/participants/{participant.id}").text
    assert f"<strong>{participant.arm_code}</strong>" in text
    assert audit_of(db, "participants", participant.id, "read_unblinded")


@pytest.mark.parametrize(
    "role", [Role.COORDINATOR, Role.THERAPIST, Role.CLINICIAN, Role.MEDICAL_MONITOR, Role.SPONSOR]
)
def test_a_blinded_reader_never_sees_the_arm(web, person, two_sites, role):
    participant = two_sites.a.participant
    person(role, *([] if role in ALL_SITES_ROLES else [two_sites.a.site]))
    text = web.get(f"/participants/{participant.id}").text
    assert "arm blinded" in text
    assert not ARMS.search(text)
    assert not ARMS.search(web.get("/participants").text)
    history = web.get(f"/history/participants/{participant.id}").text
    assert "BLINDED" in history and not ARMS.search(history)


def test_a_missed_visit_stands_out_with_a_word_and_a_shape(web, person, two_sites, db):
    a = two_sites.a
    participants.record_outcome(
        db, a.visits["PREP1"], VisitOutcome(status="missed", reason="participant unreachable")
    )
    person(Role.COORDINATOR, a.site)
    text = web.get(f"/participants/{a.participant.id}").text
    row = re.search(r'<tr id="visit-PREP1">.*?</tr>', text, re.S).group(0)
    assert '<span class="mark mark-missed">missed</span>' in row
    assert "participant unreachable" in row and "/reschedule" not in row


# --- the actions --------------------------------------------------------------------------------


def test_the_coordinator_enrols_a_screened_participant(web, person, two_sites, db):
    participant = make_participant(db, two_sites.a.site, "01-010")
    person(Role.COORDINATOR, two_sites.a.site)
    path = f"/participants/{participant.id}"
    assert 'action="' + path + '/enrol"' in web.get(path).text
    done = post_form(web, f"{path}/enrol", {"enrolled_on": "2026-01-06"}, path)
    assert done.status_code == 303
    assert done.headers["location"] == f"{path}?done=enrolled"
    page = web.get(done.headers["location"])
    assert "Enrolled: the protocol" in page.text and 'id="visit-PREP1"' in page.text
    [record] = audit_of(db, "participants", participant.id, "update")
    assert record.after["status"] == "enrolled"
    assert record.actor.startswith("coordinator:")


def test_an_enrolment_date_before_consent_is_refused_on_the_page(web, person, two_sites, db):
    participant = make_participant(db, two_sites.a.site, "01-010")
    person(Role.COORDINATOR, two_sites.a.site)
    path = f"/participants/{participant.id}"
    refused = post_form(web, f"{path}/enrol", {"enrolled_on": "2025-12-01"}, path)
    assert refused.status_code == 422
    assert "consent" in refused.text
    assert 'value="2025-12-01"' in refused.text and 'aria-invalid="true"' in refused.text
    db.expire_all()
    assert db.get(Participant, participant.id).status == "screening"
    assert not audit_of(db, "participants", participant.id, "update")


def test_the_coordinator_randomises_without_seeing_the_arm(web, person, two_sites, db):
    participant = make_participant(db, two_sites.a.site, "01-010", stage="enrolled")
    person(Role.COORDINATOR, two_sites.a.site)
    path = f"/participants/{participant.id}"
    done = post_form(web, f"{path}/randomise", {}, path)
    assert done.status_code == 303
    page = web.get(done.headers["location"])
    assert "Randomised." in page.text and "arm blinded" in page.text
    assert not ARMS.search(page.text)
    [record] = [r for r in audit_of(db, "participants", participant.id) if r.after.get("arm_code")]
    assert record.after["arm_code"] in {"MDMA", "PBO"}
    history = web.get(f"/history/participants/{participant.id}").text
    assert "BLINDED" in history and not ARMS.search(history)


def test_randomising_twice_is_refused_with_the_message(web, person, two_sites, db):
    participant = make_participant(db, two_sites.a.site, "01-010", stage="enrolled")
    person(Role.COORDINATOR, two_sites.a.site)
    path = f"/participants/{participant.id}"
    token = form_token(web, path)
    assert web.post(f"{path}/randomise", data={"csrf_token": token}).status_code == 303
    again = web.post(f"{path}/randomise", data={"csrf_token": token})
    assert again.status_code == 409
    assert "cannot become randomised" in again.text
    allocated = [r for r in audit_of(db, "participants", participant.id) if r.after.get("arm_code")]
    assert len(allocated) == 1


def test_a_visit_is_rescheduled_with_its_reason(web, person, two_sites, db):
    a = two_sites.a
    visit = a.visits["PREP2"]
    new_day = visit.scheduled_on + timedelta(days=2)
    person(Role.COORDINATOR, a.site)
    path = f"/participants/{a.participant.id}"
    done = post_form(
        web,
        f"/visits/{visit.id}/reschedule",
        {"scheduled_on": new_day.isoformat(), "reason": "therapist on leave"},
        path,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"{path}?done=rescheduled#visit-PREP2"
    page = web.get(done.headers["location"].split("#")[0])
    assert "The visit was rescheduled." in page.text
    assert "therapist on leave" in page.text
    assert f'datetime="{new_day.isoformat()}"' in page.text
    [record] = audit_of(db, "visits", visit.id, "reschedule")
    assert record.reason == "therapist on leave"
    assert record.after["scheduled_on"] == new_day.isoformat()


def test_a_reschedule_without_a_reason_is_refused_and_keeps_the_date(web, person, two_sites, db):
    a = two_sites.a
    visit = a.visits["PREP2"]
    before = visit.scheduled_on
    person(Role.COORDINATOR, a.site)
    path = f"/participants/{a.participant.id}"
    refused = post_form(
        web, f"/visits/{visit.id}/reschedule", {"scheduled_on": "2026-02-20", "reason": ""}, path
    )
    assert refused.status_code == 422
    assert "Give the reason for the change." in refused.text
    assert 'id="reschedule-PREP2-reason-error"' in refused.text
    assert 'value="2026-02-20"' in refused.text  # what was typed is kept
    assert '<details class="reschedule" open>' in refused.text
    db.expire_all()
    assert db.get(Visit, visit.id).scheduled_on == before
    assert not audit_of(db, "visits", visit.id, "reschedule")


def test_a_reason_with_a_control_character_is_refused_on_both_databases(web, person, two_sites, db):
    a = two_sites.a
    visit = a.visits["PREP2"]
    person(Role.COORDINATOR, a.site)
    path = f"/participants/{a.participant.id}"
    data = {"scheduled_on": "2026-01-16", "reason": "room\x00closed"}
    refused = post_form(web, f"/visits/{visit.id}/reschedule", data, path)
    assert refused.status_code == 422
    assert "control character U+0000" in refused.text
    assert not audit_of(db, "visits", visit.id, "reschedule")


def test_a_date_outside_the_window_is_kept_and_flagged(web, person, two_sites):
    a = two_sites.a
    visit = a.visits["PREP2"]
    late = visit.window_end_on + timedelta(days=3)
    person(Role.THERAPIST, a.site)
    path = f"/participants/{a.participant.id}"
    done = post_form(
        web,
        f"/visits/{visit.id}/reschedule",
        {"scheduled_on": late.isoformat(), "reason": "participant unwell"},
        path,
    )
    assert done.status_code == 303
    row = re.search(r'<tr id="visit-PREP2">.*?</tr>', web.get(path).text, re.S).group(0)
    assert "mark-out-of-window" in row and "out of window" in row


def test_the_coordinator_withdraws_with_a_coded_reason(web, person, two_sites, db):
    participant = two_sites.a.participant
    person(Role.COORDINATOR, two_sites.a.site)
    path = f"/participants/{participant.id}"
    page = web.get(path).text
    assert '<option value="lost_to_follow_up">lost to follow up</option>' in page
    done = post_form(
        web,
        f"{path}/withdraw",
        {"reason_code": "participant_decision", "reason_text": "moving abroad"},
        path,
    )
    assert done.status_code == 303
    text = web.get(done.headers["location"]).text
    assert "withdrawn" in text and "moving abroad" in text
    assert f"{path}/withdraw" not in text  # nothing to withdraw any more
    [record] = audit_of(db, "participants", participant.id, "withdraw")
    assert record.reason == "moving abroad"
    assert record.after["status_reason_code"] == "participant_decision"


def test_a_withdrawal_for_other_reasons_needs_the_text(web, person, two_sites, db):
    participant = two_sites.a.participant
    person(Role.COORDINATOR, two_sites.a.site)
    path = f"/participants/{participant.id}"
    refused = post_form(web, f"{path}/withdraw", {"reason_code": "other", "reason_text": ""}, path)
    assert refused.status_code == 422
    assert "reason_text is required" in refused.text
    assert '<option value="other" selected>' in refused.text
    no_code = post_form(web, f"{path}/withdraw", {"reason_code": "", "reason_text": "x y z"}, path)
    assert no_code.status_code == 422 and "Choose a coded reason." in no_code.text
    assert "x y z" in no_code.text
    db.expire_all()
    assert db.get(Participant, participant.id).status == "randomised"


def test_an_action_the_role_may_not_take_is_refused(web, person, two_sites, db):
    participant = two_sites.a.participant
    person(Role.THERAPIST, two_sites.a.site)
    path = f"/participants/{participant.id}"
    assert f"{path}/withdraw" not in web.get(path).text
    refused = post_form(web, f"{path}/withdraw", {"reason_code": "death"}, path)
    assert refused.status_code == 403
    assert "<h1>Not allowed</h1>" in refused.text
    assert not audit_of(db, "participants", participant.id, "withdraw")
