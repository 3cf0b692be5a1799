"""MedDRA coding of an adverse event through the API, on both databases: the medical monitor
codes the whole hierarchy, a partial or malformed coding is refused as problem+json, re-coding
keeps the earlier coding in the audit trail with its reason, and coding leaves the
investigator's signature valid."""

import pytest
from sqlalchemy import select

from app.audit.signed_records import record_hash
from app.models import AdverseEvent, AuditRecord
from app.permissions import Role

HEADACHE = {
    "meddra_version": "27.1",
    "llt": {"term": "Headache", "code": "10019211"},
    "pt": {"term": "Headache", "code": "10019211"},
    "hlt": {"term": "Headaches NEC", "code": "10019233"},
    "hlgt": {"term": "Headaches", "code": "10019231"},
    "soc": {"term": "Nervous system disorders", "code": "10029205"},
    "reason": "Coded against MedDRA 27.1",
}


@pytest.fixture
def monitor(two_sites, client_as):
    return client_as(Role.MEDICAL_MONITOR)


def _put(client, event, body):
    return client.put(f"/api/v1/adverse-events/{event.id}/coding", json=body)


def _audit(db, event):
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == "adverse_events", AuditRecord.entity_id == str(event.id)
    )
    return db.scalars(stmt.order_by(AuditRecord.id)).all()


def test_the_medical_monitor_codes_an_event_and_the_read_shape_shows_it(monitor, two_sites, db):
    event = two_sites.a.adverse_event
    response = _put(monitor, event, HEADACHE)
    assert response.status_code == 200, response.text
    coding = response.json()["coding"]
    assert coding["meddra_version"] == "27.1"
    assert coding["pt"] == {"term": "Headache", "code": "10019211"}
    assert coding["soc"] == {"term": "Nervous system disorders", "code": "10029205"}
    shown = monitor.get(f"/api/v1/adverse-events/{event.id}").json()
    assert shown["coding"] == coding
    other = monitor.get(f"/api/v1/adverse-events/{two_sites.b.adverse_event.id}").json()
    assert other["coding"] is None
    last = _audit(db, event)[-1]
    assert (last.action, last.reason) == ("code_meddra", "Coded against MedDRA 27.1")
    assert last.actor == f"medical_monitor:{monitor.user.username}"
    assert last.before["meddra_pt"] is None and last.after["meddra_pt_code"] == "10019211"


def test_re_coding_keeps_the_earlier_coding_in_the_audit_trail(monitor, two_sites, db):
    event = two_sites.a.adverse_event
    assert _put(monitor, event, HEADACHE).status_code == 200
    migraine = HEADACHE | {
        "llt": {"term": "Migraine", "code": "10027599"},
        "pt": {"term": "Migraine", "code": "10027599"},
        "hlt": {"term": "Migraine headaches", "code": "10027603"},
        "reason": "The site's narrative describes a migraine with aura",
    }
    response = _put(monitor, event, migraine)
    assert response.status_code == 200, response.text
    assert response.json()["coding"]["pt"]["term"] == "Migraine"
    last = _audit(db, event)[-1]
    assert last.reason == "The site's narrative describes a migraine with aura"
    assert last.before["meddra_pt"] == "Headache" and last.after["meddra_pt"] == "Migraine"
    assert "meddra_hlgt" not in last.after  # unchanged levels are not rewritten
    again = _put(monitor, event, migraine | {"reason": "Same again"})
    assert again.status_code == 422 and "changes nothing" in again.json()["detail"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"meddra_version": "27"}, "meddra_version"),
        ({"meddra_version": "27.5"}, "meddra_version"),
        ({"pt": {"term": "Headache", "code": "1001921"}}, "pt"),  # 7 digits
        ({"soc": {"term": "Nervous system disorders", "code": "1002920X"}}, "soc"),
        ({"hlt": None}, "hlt"),
        ({"reason": ""}, "reason"),
        ({"hlgt": {"term": "Headaches", "code": "10029205"}}, "code of hlgt"),  # the SOC's code
        ({"llt": {"term": "Head pain", "code": "10019211"}}, "same term"),
    ],
)
def test_a_partial_or_malformed_coding_is_refused_as_problem_json(
    monitor, two_sites, db, change, words
):
    body = HEADACHE | change
    if change.get("hlt", "") is None:
        del body["hlt"]
    response = _put(monitor, two_sites.a.adverse_event, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.text
    db.expire_all()
    assert db.get(AdverseEvent, two_sites.a.adverse_event.id).meddra_pt is None


def test_site_staff_and_the_sponsor_do_not_code(two_sites, client_as):
    for role, sites in (
        (Role.CLINICIAN, [two_sites.a.site]),
        (Role.COORDINATOR, [two_sites.a.site]),
        (Role.SPONSOR, []),
    ):
        response = _put(client_as(role, sites), two_sites.a.adverse_event, HEADACHE)
        assert response.status_code == 403, role


def test_an_event_entered_in_error_is_not_coded(monitor, two_sites, client):
    event = two_sites.a.adverse_event
    marked = client.post(
        f"/api/v1/adverse-events/{event.id}/entered-in-error",
        json={"reason": "Recorded for the wrong participant"},
    )
    assert marked.status_code == 200, marked.text
    assert _put(monitor, event, HEADACHE).status_code == 409


def test_coding_leaves_the_signature_hash_of_the_record_unchanged(monitor, two_sites, db):
    event = two_sites.a.adverse_event
    before = record_hash(event)
    assert _put(monitor, event, HEADACHE).status_code == 200
    db.refresh(event)
    assert event.meddra_pt == "Headache"
    assert record_hash(event) == before


def test_the_coder_lists_the_events_still_to_code(monitor, two_sites):
    a, b = two_sites.a.adverse_event, two_sites.b.adverse_event
    assert _put(monitor, a, HEADACHE).status_code == 200

    def listed(coded: str) -> set[str]:
        response = monitor.get("/api/v1/adverse-events", params={"coded": coded})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert listed("false") == {str(b.id)}
    assert listed("true") == {str(a.id)}
