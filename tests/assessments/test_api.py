from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import clock
from app.models import AuditRecord
from app.protocols import service as protocols
from app.protocols.loader import load_protocol_file
from app.studies import service as studies
from app.studies.schemas import StudyCreate
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import MDMA, make_participant, make_site

PROTOCOL = load_protocol_file(MDMA)  # parsed once, not once per test
ADMINISTERED = "2026-02-02T17:30:00Z"


@pytest.fixture
def trial(db):
    version, _ = protocols.store(db, PROTOCOL)
    study = studies.create_study(
        db, StudyCreate(code="MAPP-T", name="Test study", protocol_key=version.protocol_key)
    )
    site = make_site(db, study)
    participant = make_participant(db, site, stage="randomised")
    other = make_participant(db, site, "01-002", stage="enrolled")
    dosing_session = make_dosing_session(db, participant)
    return SimpleNamespace(
        participant=participant,
        other=other,
        session=dosing_session,
        other_session=make_dosing_session(db, other),
    )


def _screen(**answers):
    body = {
        "kind": "cssrs_screen",
        "administered_at": ADMINISTERED,
        "recall_period": "since_last_visit",
        "wish_to_be_dead": False,
        "suicidal_thoughts": False,
        "suicidal_behaviour": False,
    }
    return body | answers


def _guess(**fields):
    body = {
        "kind": "blinding_guess",
        "administered_at": ADMINISTERED,
        "respondent_role": "participant",
        "guessed_arm": "MDMA",
        "confidence_pct": 70,
    }
    return body | fields


def _post(client, participant, body):
    return client.post(f"/api/v1/participants/{participant.id}/assessments", json=body)


def _create(client, participant, body):
    response = _post(client, participant, body)
    assert response.status_code == 201, response.text
    return response.json()


def _refused(response, field, message):
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors


def test_a_negative_screen_is_stored_with_no_risk_and_when_it_was_received(client, trial):
    created = _create(client, trial.participant, _screen(dosing_session_id=str(trial.session.id)))
    assert created["kind"] == "cssrs_screen"
    assert created["positive_items"] == []
    assert created["risk"] == "none"
    assert created["respondent_role"] == "rater"
    assert created["administered_at"] == "2026-02-02T17:30:00Z"
    received = datetime.fromisoformat(created["received_at"])
    assert clock.utcnow() - timedelta(minutes=1) < received <= clock.utcnow()
    assert created["ideation_with_methods"] is None
    fetched = client.get(f"/api/v1/assessments/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


@pytest.mark.parametrize(
    ("answers", "positive", "risk"),
    [
        ({"wish_to_be_dead": True}, [1], "low"),
        (
            {
                "suicidal_thoughts": True,
                "ideation_with_methods": False,
                "ideation_with_intent": False,
                "ideation_with_plan_and_intent": False,
            },
            [2],
            "low",
        ),
        (
            {
                "wish_to_be_dead": True,
                "suicidal_thoughts": True,
                "ideation_with_methods": True,
                "ideation_with_intent": False,
                "ideation_with_plan_and_intent": False,
            },
            [1, 2, 3],
            "moderate",
        ),
        (
            {
                "suicidal_thoughts": True,
                "ideation_with_methods": False,
                "ideation_with_intent": True,
                "ideation_with_plan_and_intent": False,
            },
            [2, 4],
            "high",
        ),
        (
            {
                "suicidal_behaviour": True,
                "behaviour_within_3_months": False,
                "recall_period": "lifetime",
            },
            [6],
            "moderate",
        ),
        ({"suicidal_behaviour": True, "behaviour_within_3_months": True}, [6], "high"),
    ],
)
def test_screen_triage_follows_the_riskiest_yes(client, trial, answers, positive, risk):
    created = _create(client, trial.participant, _screen(**answers))
    assert created["positive_items"] == positive
    assert created["risk"] == risk


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        (
            {"ideation_with_methods": True},
            "cssrs_screen.ideation_with_methods",
            "item 3 is asked only when item 2 (suicidal_thoughts) is yes",
        ),
        (
            {
                "suicidal_thoughts": True,
                "ideation_with_methods": False,
                "ideation_with_plan_and_intent": False,
            },
            "cssrs_screen.ideation_with_intent",
            "item 4 must be answered when item 2 (suicidal_thoughts) is yes",
        ),
        (
            {"suicidal_behaviour": True},
            "cssrs_screen.behaviour_within_3_months",
            "must be answered when item 6 (suicidal_behaviour) is yes",
        ),
        (
            {"behaviour_within_3_months": True},
            "cssrs_screen.behaviour_within_3_months",
            "asked only when item 6 (suicidal_behaviour) is yes",
        ),
        ({"recall_period": "last_year"}, "cssrs_screen.recall_period", "Input should be"),
        ({"wish_to_be_dead": None}, "cssrs_screen.wish_to_be_dead", "valid boolean"),
        (
            {"administered_at": "2999-01-01T00:00:00Z"},
            "cssrs_screen.administered_at",
            "in the future",
        ),
        # a "no" that lax parsing would have read as False, a 1 read as True
        ({"suicidal_thoughts": "no"}, "cssrs_screen.suicidal_thoughts", "valid boolean"),
        ({"wish_to_be_dead": 1}, "cssrs_screen.wish_to_be_dead", "valid boolean"),
        (
            {"administered_at": "2025-12-31T12:00:00Z"},
            "cssrs_screen.administered_at",
            "is before the participant's consent date 2026-01-02",
        ),
        ({"administered_at": 1767355200}, "cssrs_screen.administered_at", "give ISO 8601 text"),
    ],
)
def test_answers_the_screener_skips_or_requires_are_refused(client, trial, answers, field, message):
    _refused(_post(client, trial.participant, _screen(**answers)), field, message)
    assert (
        client.get(f"/api/v1/participants/{trial.participant.id}/assessments").json()["items"] == []
    )


def test_a_blinding_guess_keeps_its_time_stamps_and_confidence(client, trial):
    created = _create(client, trial.participant, _guess(dosing_session_id=str(trial.session.id)))
    assert created["kind"] == "blinding_guess"
    assert (created["guessed_arm"], created["confidence_pct"]) == ("MDMA", 70)
    assert created["confidence_level"] is None
    assert created["respondent_role"] == "participant"
    assert created["administered_at"] == "2026-02-02T17:30:00Z"
    assert datetime.fromisoformat(created["received_at"]) > datetime.fromisoformat(
        created["administered_at"]
    )
    assert "arm_code" not in created
    unsure = _create(
        client,
        trial.participant,
        _guess(
            respondent_role="therapist",
            guessed_arm="unsure",
            confidence_pct=None,
            confidence_level="slightly",
        ),
    )
    assert (unsure["guessed_arm"], unsure["confidence_level"]) == ("unsure", "slightly")


def test_a_guess_names_an_arm_of_the_protocol_and_one_confidence(client, trial):
    _refused(
        _post(client, trial.participant, _guess(guessed_arm="ketamine")),
        "blinding_guess.guessed_arm",
        "'ketamine' is not an arm of protocol mdma-ptsd-phase3 1.4; give one of: MDMA, PBO, unsure",
    )
    _refused(
        _post(client, trial.participant, _guess(confidence_level="very")),
        "blinding_guess.confidence_pct",
        "exactly one of them",
    )
    _refused(
        _post(client, trial.participant, _guess(confidence_pct=None)),
        "blinding_guess.confidence_pct",
        "exactly one of them",
    )
    _refused(
        _post(client, trial.participant, _guess(confidence_pct=101)),
        "blinding_guess.confidence_pct",
        "less than or equal to 100",
    )
    _refused(
        _post(client, trial.participant, _guess(respondent_role="sponsor")),
        "blinding_guess.respondent_role",
        "Input should be",
    )


def test_a_guess_before_randomisation_is_refused(client, trial):
    response = _post(client, trial.other, _guess())
    assert response.status_code == 409
    assert "not randomised yet" in response.json()["detail"]


def test_links_must_be_the_participants_own_visit_and_session(client, trial):
    their_visit = str(trial.other_session.visit_id)
    _refused(
        _post(client, trial.participant, _screen(visit_id=their_visit)),
        "cssrs_screen.visit_id",
        "participant 01-001 has no visit",
    )
    _refused(
        _post(client, trial.participant, _guess(dosing_session_id=str(trial.other_session.id))),
        "blinding_guess.dosing_session_id",
        "participant 01-001 has no dosing session",
    )
    _refused(
        _post(
            client,
            trial.participant,
            _screen(
                dosing_session_id=str(trial.session.id),
                visit_id=str(_visit_id(client, trial.participant, "EXP2")),
            ),
        ),
        "cssrs_screen.visit_id",
        "belongs to another visit than EXP2",
    )
    linked = _create(
        client,
        trial.participant,
        _screen(dosing_session_id=str(trial.session.id), visit_id=str(trial.session.visit_id)),
    )
    assert linked["visit_id"] == str(trial.session.visit_id)


def _visit_id(client, participant, code):
    visits = client.get(f"/api/v1/participants/{participant.id}/visits").json()["items"]
    return next(v["id"] for v in visits if v["code"] == code)


def test_list_by_kind_and_entered_in_error_keeps_the_row(client, db, trial):
    screen = _create(client, trial.participant, _screen())
    guess = _create(client, trial.participant, _guess())
    _create(client, trial.other, _screen())
    url = f"/api/v1/participants/{trial.participant.id}/assessments"

    def ids(query=""):
        response = client.get(url + query)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [screen["id"], guess["id"]]
    assert ids("?kind=blinding_guess") == [guess["id"]]
    assert ids("?kind=cssrs_screen") == [screen["id"]]
    assert client.get(url + "?kind=phq9").status_code == 422

    marked = client.post(
        f"/api/v1/assessments/{screen['id']}/entered-in-error", json={"reason": "Wrong form"}
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["record_status"] == "entered_in_error"
    assert marked.json()["risk"] == "none"
    assert ids() == [guess["id"]]
    assert ids("?include_entered_in_error=true") == [screen["id"], guess["id"]]
    assert client.get(f"/api/v1/assessments/{screen['id']}").json()["error_reason"] == (
        "Wrong form"
    )
    again = client.post(
        f"/api/v1/assessments/{screen['id']}/entered-in-error", json={"reason": "Twice over"}
    )
    assert again.status_code == 409
    records = db.scalars(
        select(AuditRecord)
        .where(AuditRecord.entity_type == "assessments", AuditRecord.entity_id == screen["id"])
        .order_by(AuditRecord.id)
    ).all()
    assert [(r.action, r.reason) for r in records] == [
        ("create", None),
        ("entered_in_error", "Wrong form"),
    ]
    assert records[0].after["data"]["suicidal_thoughts"] is False
