"""Blinding through the HTTP API: only the unblinded pharmacist sees treatment arms, and each of
their reads of one is audited; everybody else, the coordinator who randomises included, sees the
arm masked in every read shape, list and audit record."""

from sqlalchemy import select

from app.auth.blinding import MASKED, mask_values
from app.models import AuditRecord, Participant
from app.permissions import Role
from tests.factories.trial import make_participant

API = "/api/v1"
ARMS = {"MDMA", "PBO"}


def _unblinded_reads(db, participant_id) -> list[AuditRecord]:
    stmt = select(AuditRecord).where(
        AuditRecord.action == "read_unblinded", AuditRecord.entity_id == str(participant_id)
    )
    return list(db.scalars(stmt.order_by(AuditRecord.sequence)))


def _arm_values(history: list[dict]) -> list[str]:
    return [
        values["arm_code"]
        for record in history
        for values in (record["before"], record["after"])
        if values and values.get("arm_code") is not None
    ]


def test_the_coordinator_who_randomises_sees_the_arm_masked_everywhere(client_as, db, two_sites):
    a = two_sites.a
    enrolled = make_participant(db, a.site, "01-002", stage="enrolled")
    coordinator = client_as(Role.COORDINATOR, [a.site])

    randomised = coordinator.post(f"{API}/participants/{enrolled.id}/randomise")
    assert randomised.status_code == 200, randomised.text
    assert randomised.json()["status"] == "randomised"
    assert randomised.json()["arm_code"] == MASKED
    db.refresh(enrolled)
    assert enrolled.arm_code in ARMS  # stored unmasked, of course

    got = coordinator.get(f"{API}/participants/{enrolled.id}").json()
    assert got["arm_code"] == MASKED
    listed = coordinator.get(f"{API}/participants").json()["items"]
    assert {p["subject_id"]: p["arm_code"] for p in listed} == {"01-001": MASKED, "01-002": MASKED}
    response = coordinator.get(f"{API}/history/participants/{enrolled.id}")
    history = response.json()["items"]
    assert "randomised" in [r["after"].get("status") for r in history if r["after"]]
    assert _arm_values(history) == [MASKED]
    assert f'"{enrolled.arm_code}"' not in response.text
    # the answers of a blinded caller left no trace of an unblinded read
    assert _unblinded_reads(db, enrolled.id) == []


def test_the_medical_monitor_sees_every_site_with_the_arms_masked(client_as, db, two_sites):
    monitor = client_as(Role.MEDICAL_MONITOR)
    participants = monitor.get(f"{API}/participants").json()["items"]
    assert len(participants) == 2
    assert {p["arm_code"] for p in participants} == {MASKED}
    for site in (two_sites.a, two_sites.b):
        one = monitor.get(f"{API}/participants/{site.participant.id}").json()
        assert one["arm_code"] == MASKED
        history = monitor.get(f"{API}/history/participants/{site.participant.id}").json()["items"]
        assert _arm_values(history) == [MASKED]
    trail = monitor.get(f"{API}/audit-records", params={"entity_type": "participants"}).json()
    assert _arm_values(trail["items"]) == [MASKED, MASKED]
    assert _unblinded_reads(db, two_sites.a.participant.id) == []


def test_the_sponsors_audit_trail_masks_the_arms_it_holds(client_as, db, two_sites):
    participant = two_sites.b.participant
    db.commit()
    stored = db.scalars(
        select(AuditRecord).where(AuditRecord.entity_id == str(participant.id))
    ).all()
    assert participant.arm_code in _arm_values(
        [{"before": r.before, "after": r.after} for r in stored]
    )
    sponsor = client_as(Role.SPONSOR)
    response = sponsor.get(f"{API}/audit-records", params={"entity_id": str(participant.id)})
    assert response.status_code == 200
    assert _arm_values(response.json()["items"]) == [MASKED]
    assert f'"{participant.arm_code}"' not in response.text


def test_the_pharmacist_sees_the_arms_of_their_site_and_each_read_is_audited(
    client_as, db, two_sites
):
    a = two_sites.a
    pharmacist = client_as(Role.PHARMACIST, [a.site], username="phil")
    arm = db.get(Participant, a.participant.id).arm_code
    assert arm in ARMS

    assert pharmacist.get(f"{API}/participants/{a.participant.id}").json()["arm_code"] == arm
    listed = pharmacist.get(f"{API}/participants").json()["items"]
    assert [(p["id"], p["arm_code"]) for p in listed] == [(str(a.participant.id), arm)]
    history = pharmacist.get(f"{API}/history/participants/{a.participant.id}").json()["items"]
    assert _arm_values(history) == [arm]

    reads = _unblinded_reads(db, a.participant.id)
    assert len(reads) == 3  # the record, the list, the history
    for read in reads:
        assert read.actor == "pharmacist:phil"
        assert read.entity_type == "participants"
        assert read.after == {"fields": ["arm_code"]}  # which field was seen, never its value
    # ... and the reads are themselves in the history, where the monitor sees who looked
    monitor = client_as(Role.MEDICAL_MONITOR)
    seen = monitor.get(f"{API}/history/participants/{a.participant.id}").json()["items"]
    assert [r["actor"] for r in seen if r["action"] == "read_unblinded"] == ["pharmacist:phil"] * 3

    # the pharmacist is unblinded for their own sites only
    assert pharmacist.get(f"{API}/participants/{two_sites.b.participant.id}").status_code == 404
    assert _unblinded_reads(db, two_sites.b.participant.id) == []


def test_a_participant_not_yet_randomised_has_no_arm_to_mask_or_audit(client_as, db, two_sites):
    enrolled = make_participant(db, two_sites.a.site, "01-003", stage="enrolled")
    for role in (Role.COORDINATOR, Role.PHARMACIST):
        caller = client_as(role, [two_sites.a.site])
        assert caller.get(f"{API}/participants/{enrolled.id}").json()["arm_code"] is None
    assert _unblinded_reads(db, enrolled.id) == []


def test_blinding_guesses_are_guesses_not_arms(client_as, two_sites):
    therapist = client_as(Role.THERAPIST, [two_sites.a.site])
    guess = therapist.post(
        f"{API}/participants/{two_sites.a.participant.id}/assessments",
        json={
            "kind": "blinding_guess",
            "administered_at": "2026-02-02T17:30:00Z",
            "respondent_role": "participant",
            "guessed_arm": "MDMA",
            "confidence_pct": 70,
        },
    )
    assert guess.status_code == 201, guess.text
    assert guess.json()["guessed_arm"] == "MDMA"


def test_masking_leaves_other_fields_and_empty_values_alone():
    values = {"arm_code": "PBO", "kit_number": "K-0042", "status": "randomised", "x": None}
    assert mask_values(values, unblinded=False) == {
        "arm_code": MASKED,
        "kit_number": MASKED,
        "status": "randomised",
        "x": None,
    }
    assert mask_values({"arm_code": None}, unblinded=False) == {"arm_code": None}
    assert mask_values(values, unblinded=True) == values
    assert mask_values(None, unblinded=False) is None
