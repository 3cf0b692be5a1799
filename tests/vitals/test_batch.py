from sqlalchemy import func, select

from app.config import get_settings
from app.models import AuditRecord, VitalReading
from tests.vitals.readings import observation, reading


def _url(dosing_session):
    return f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings/batch"


def _count(db):
    return db.scalar(select(func.count()).select_from(VitalReading))


def test_a_mixed_batch_keeps_the_good_readings_and_explains_the_bad(client, db, dosing_session):
    good_1, good_2 = reading(30), reading(60)
    bad = reading(45, observation("PULSE", 900, "beats/min"))
    response = client.post(_url(dosing_session), json={"readings": [good_1, bad, "junk", good_2]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 2)
    assert [(r["id"], r["status"]) for r in body["results"]] == [
        (good_1["id"], "accepted"),
        (bad["id"], "rejected"),
        (None, "rejected"),
        (good_2["id"], "accepted"),
    ]
    problem = body["results"][1]["problem"]
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "observations.0.value"
    assert "PULSE 900 beats/min is outside" in problem["detail"]
    assert body["results"][0]["problem"] is None
    assert "JSON object" in body["results"][2]["problem"]["detail"]
    stored = {str(i) for i in db.scalars(select(VitalReading.id))}
    assert stored == {good_1["id"], good_2["id"]}


def test_a_replayed_batch_gives_only_duplicates_and_no_new_rows(client, db, dosing_session):
    batch = {"readings": [reading(minutes) for minutes in (0, 30, 60, 90)]}
    first = client.post(_url(dosing_session), json=batch).json()
    assert first["accepted"] == 4
    replay = client.post(_url(dosing_session), json=batch)
    assert replay.status_code == 200
    assert (replay.json()["accepted"], replay.json()["duplicates"]) == (0, 4)
    assert {r["status"] for r in replay.json()["results"]} == {"duplicate"}
    assert _count(db) == 4


def test_each_accepted_reading_has_its_audit_record(client, db, dosing_session):
    batch = [reading(minutes) for minutes in (0, 30, 60)]
    client.post(_url(dosing_session), json={"readings": batch})
    audited = db.scalars(
        select(AuditRecord.entity_id).where(
            AuditRecord.entity_type == "vital_readings", AuditRecord.action == "create"
        )
    )
    assert set(audited) == {r["id"] for r in batch}


def test_a_conflicting_replay_is_rejected_without_touching_the_stored_reading(
    client, db, dosing_session
):
    original = reading(30)
    client.post(_url(dosing_session), json={"readings": [original]})
    changed = {**original, "observations": [observation("PULSE", 70, "beats/min")]}
    fresh = reading(60)
    body = client.post(_url(dosing_session), json={"readings": [changed, fresh]}).json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    problem = body["results"][0]["problem"]
    assert problem["status"] == 409
    assert problem["detail"] == (
        f"reading {original['id']} is already stored, and this one differs in observations; "
        "a reading id is never reused: give a new reading a new id"
    )
    stored = client.get(f"/api/v1/vital-readings/{original['id']}").json()
    assert stored["pulse_bpm"] == 104


def test_ids_repeated_within_one_batch(client, db, dosing_session):
    once = reading(30)
    clash = reading(60)
    clash_changed = {**clash, "observations": [observation("TEMP", 36.6, "C")]}
    body = client.post(
        _url(dosing_session), json={"readings": [once, once, clash, clash_changed]}
    ).json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "duplicate",
        "accepted",
        "rejected",
    ]
    assert "earlier in this batch" in body["results"][3]["problem"]["detail"]
    assert _count(db) == 2


def test_a_refused_first_copy_does_not_block_a_good_one(client, db, dosing_session):
    good = reading(30)
    broken = {**good, "observations": [observation("PULSE", 900, "beats/min")]}
    body = client.post(_url(dosing_session), json={"readings": [broken, good]}).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert _count(db) == 1


def test_a_batch_above_the_limit_is_refused_whole(client, db, dosing_session, monkeypatch):
    monkeypatch.setattr(get_settings(), "batch_size_max", 3)
    response = client.post(_url(dosing_session), json={"readings": [reading(m) for m in range(4)]})
    assert response.status_code == 413
    assert "at most 3 readings" in response.json()["detail"]
    assert _count(db) == 0


def test_an_empty_batch_stores_nothing(client, db, dosing_session):
    body = client.post(_url(dosing_session), json={"readings": []}).json()
    assert (body["accepted"], body["duplicates"], body["rejected"], body["results"]) == (
        0,
        0,
        0,
        [],
    )


def test_a_batch_needs_its_readings_list(client, dosing_session):
    response = client.post(_url(dosing_session), json={"reading": []})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"readings", "reading"}


def test_a_resent_batch_holding_stored_ids_turns_them_into_duplicates(client, db, dosing_session):
    """A tablet retries before the first answer arrived: both requests carry the same ids, and
    the insert skips the one stored (tests/vitals/test_concurrent_ingest.py: at once, for real)."""
    sent = [reading(30), reading(60)]
    client.post(_url(dosing_session), json={"readings": sent[:1]})
    body = client.post(_url(dosing_session), json={"readings": sent}).json()
    assert [r["status"] for r in body["results"]] == ["duplicate", "accepted"]
    assert _count(db) == 2
    audited = db.scalars(
        select(AuditRecord.entity_id).where(AuditRecord.entity_type == "vital_readings")
    )
    assert sorted(audited) == sorted(r["id"] for r in sent)


def test_a_refused_reading_whose_id_is_stored_is_told_the_id_is_taken(client, db, dosing_session):
    """A stored reading's id sent again with content that would be refused anyway (systolic not
    above diastolic): the id is the problem to fix (409 naming what differs), as for any reuse
    of an id."""
    stored = reading(30)
    client.post(_url(dosing_session), json={"readings": [stored]})
    inverted = [observation("SYSBP", 80, "mmHg"), observation("DIABP", 95, "mmHg")]
    body = client.post(
        _url(dosing_session), json={"readings": [dict(stored, observations=inverted)]}
    ).json()
    (result,) = body["results"]
    assert (result["status"], result["problem"]["status"]) == ("rejected", 409)
    assert "already stored" in result["problem"]["detail"]
    assert "observations" in result["problem"]["detail"]
    assert _count(db) == 1


def test_a_refused_reading_then_a_valid_one_under_its_id_stores_the_valid_one(
    client, db, dosing_session
):
    valid = reading(30)
    inverted = [observation("SYSBP", 80, "mmHg"), observation("DIABP", 95, "mmHg")]
    refused = dict(valid, observations=inverted)
    body = client.post(_url(dosing_session), json={"readings": [refused, valid]}).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["results"][0]["problem"]["status"] == 422
    assert [str(i) for i in db.scalars(select(VitalReading.id))] == [valid["id"]]
