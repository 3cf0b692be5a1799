"""The session protocol around the doses: the therapist pair before the initial dose, the
return-to-baseline attestation (or a reason) before the end, the visit the end completes and a
session started before its visit's window."""

from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.models import AuditRecord
from app.studies import service as studies
from app.studies.schemas import SiteCreate
from app.time_bounds import today_at
from tests.dosing.api import STARTED, at, attest_pair, create_session, give, started_session
from tests.factories.trial import MDMA, make_participant, make_study


def _audit_reasons(db, table, entity_id):
    stmt = (
        select(AuditRecord.reason)
        .where(AuditRecord.entity_type == table, AuditRecord.entity_id == entity_id)
        .order_by(AuditRecord.id)
    )
    return list(db.scalars(stmt))


def _visit(client, participant_id, code="EXP1"):
    visits = client.get(f"/api/v1/participants/{participant_id}/visits").json()["items"]
    return next(v for v in visits if v["code"] == code)


def test_the_initial_dose_waits_for_the_therapist_pair(client, participant, therapists):
    sid = started_session(client, participant.id)["id"]
    alone = give(client, sid, "initial", 80, 10)
    assert alone.status_code == 422, alone.text
    assert alone.json()["title"] == "Protocol violation"
    assert "requires two therapists present before the initial dose" in alone.json()["detail"]
    assert "send deviation_reason" in alone.json()["detail"]
    assert alone.json()["errors"][0]["field"] == "therapists"
    assert client.get(f"/api/v1/dosing-sessions/{sid}/doses").json()["items"] == []

    attest_pair(client, sid, *therapists, minutes=12)
    before_pair = give(client, sid, "initial", 80, 10)
    assert before_pair.status_code == 422
    assert "after the initial dose" in before_pair.json()["detail"]

    assert give(client, sid, "initial", 80, 15).status_code == 201


def test_an_initial_dose_without_the_pair_is_a_deviation_with_its_reason(client, db, participant):
    sid = started_session(client, participant.id)["id"]
    reason = "co-therapist delayed by snow; the clinician stayed in the room"
    dose = give(client, sid, "initial", 80, 10, deviation_reason=reason)
    assert dose.status_code == 201, dose.text
    assert dose.json()["deviation_reason"] == reason
    (audited,) = _audit_reasons(db, "doses", dose.json()["id"])
    assert "two therapists present" in audited and reason in audited


def test_a_protocol_may_need_one_therapist(client, db, tmp_path):
    text = MDMA.read_text()
    anchor = "dosing:\n  sessions:\n"
    assert anchor in text and 'version: "1.4"' in text
    edited = tmp_path / "mdma-one-therapist.yaml"
    edited.write_text(
        text.replace(anchor, "dosing:\n  therapists_required: 1\n  sessions:\n", 1).replace(
            'version: "1.4"', 'version: "1.4-one-therapist"', 1
        )
    )
    study = make_study(db, edited, code="MAPP-1T")
    site = studies.create_site(db, study, SiteCreate(code="S01", name="Site S01"))
    participant = make_participant(db, site, stage="randomised")
    sid = started_session(client, participant.id)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201


def test_a_session_ends_after_the_baseline_attestation_or_with_a_reason(
    client, db, participant, therapists
):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201
    refused = client.post(f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(400)})
    assert refused.status_code == 409
    assert "return to baseline has not been attested" in refused.json()["detail"]
    assert "end_reason" in refused.json()["detail"]
    assert client.get(f"/api/v1/dosing-sessions/{sid}").json()["status"] == "in_progress"

    reason = "participant transferred to the emergency department"
    ended = client.post(
        f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(400), "end_reason": reason}
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended" and ended.json()["end_reason"] == reason
    assert any(reason in (r or "") for r in _audit_reasons(db, "dosing_sessions", sid))


def test_an_end_reason_after_the_baseline_attestation_is_refused(client, participant, therapists):
    lead, _ = therapists
    sid = started_session(client, participant.id, pair=therapists)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201
    attested = client.post(
        f"/api/v1/dosing-sessions/{sid}/baseline-attestation",
        json={"attested_by_id": str(lead.id), "attested_at": at(390)},
    )
    assert attested.status_code == 200, attested.text
    needless = client.post(
        f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(400), "end_reason": "done"}
    )
    assert needless.status_code == 422
    assert needless.json()["errors"][0]["field"] == "end_reason"
    assert (
        client.post(f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(400)}).json()[
            "status"
        ]
        == "ended"
    )


def test_ending_a_session_completes_its_visit_on_the_sites_date(client, db):
    # a site far east of UTC, so the session's local date can differ from its UTC date
    site_study = make_study(db, code="MAPP-KI")
    zone = "Pacific/Kiritimati"  # UTC+14
    site = studies.create_site(
        db, site_study, SiteCreate(code="S09", name="Site S09", timezone=zone)
    )
    participant = make_participant(db, site, stage="randomised")
    sid = started_session(client, participant.id)["id"]
    ended = client.post(
        f"/api/v1/dosing-sessions/{sid}/end",
        json={"ended_at": at(60), "end_reason": "participant declined the dose"},
    )
    assert ended.status_code == 200, ended.text
    visit = _visit(client, participant.id)
    assert visit["status"] == "completed"
    assert visit["occurred_on"] == STARTED.astimezone(ZoneInfo(zone)).date().isoformat()
    assert f"dosing session {sid} ended" in _audit_reasons(db, "visits", visit["id"])


def test_a_session_started_before_its_visits_window_is_flagged(client, db, site):
    early = make_participant(
        db, site, "01-031", stage="randomised", enrolled_on=today_at(site.timezone).at
    )
    sid = create_session(client, early.id)["id"]
    started = client.post(f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": at(0)})
    assert started.status_code == 200, started.text
    assert started.json()["started_before_window"] is True
    window_start = _visit(client, early.id)["window_start_on"]
    reasons = _audit_reasons(db, "dosing_sessions", sid)
    assert f"before the window of visit EXP1 opens on {window_start}" in reasons[-1]

    on_time = make_participant(db, site, "01-032", stage="randomised")
    in_window = started_session(client, on_time.id)
    assert in_window["started_before_window"] is False
