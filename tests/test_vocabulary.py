"""One vocabulary: the database itself refuses a record status Vigil does not know, and the
severity order is one table."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, get_args

import pytest
from sqlalchemy import CheckConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.alerts.schemas import AlertSeverity
from app.ids import new_id
from app.models import (
    AdverseEvent,
    Assessment,
    Base,
    Dose,
    DosingSession,
    TherapistNote,
    VitalReading,
)
from app.protocols import rule_schema, schema
from app.vocabulary import SEVERITY_ORDER, RecordStatus
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study

AT = T0 + timedelta(minutes=40)


def _dose(s: DosingSession) -> Dose:
    return Dose(dosing_session_id=s.id, kind="initial", amount_mg=120, administered_at=AT)


def _reading(s: DosingSession) -> VitalReading:
    return VitalReading(
        id=new_id(),
        dosing_session_id=s.id,
        measured_at=AT,
        received_at=AT,
        source="tablet",
        reported={},
    )


def _adverse_event(s: DosingSession) -> AdverseEvent:
    return AdverseEvent(
        participant_id=s.participant_id,
        verbatim_term="headache",
        onset_at=AT,
        severity="mild",
        relatedness="possibly_related",
        expectedness="expected",
        action_taken="none",
        outcome="recovered",
        site_aware_at=AT,
    )


def _assessment(s: DosingSession) -> Assessment:
    return Assessment(
        participant_id=s.participant_id,
        kind="cssrs_screen",
        administered_at=AT,
        respondent_role="participant",
        data={},
    )


def _note(s: DosingSession) -> TherapistNote:
    return TherapistNote(participant_id=s.participant_id, written_at=AT, text="calm")


RECORDS: dict[str, Callable[[DosingSession], Any]] = {
    "doses": _dose,
    "vital_readings": _reading,
    "adverse_events": _adverse_event,
    "assessments": _assessment,
    "therapist_notes": _note,
}


def test_every_table_with_a_record_status_is_listed_here():
    with_status = {t.name for t in Base.metadata.tables.values() if "record_status" in t.c}
    assert with_status == set(RECORDS)


@pytest.fixture
def dosing_session(db: Session) -> DosingSession:
    site = make_site(db, make_study(db))
    return make_dosing_session(db, make_participant(db, site, stage="randomised"))


@pytest.mark.parametrize("table", sorted(RECORDS))
def test_the_database_refuses_a_record_status_it_does_not_know(db, dosing_session, table):
    valid = RECORDS[table](dosing_session)
    db.add(valid)
    db.flush()  # the known statuses are stored
    assert valid.record_status == RecordStatus.VALID

    refused = RECORDS[table](dosing_session)
    refused.record_status = "deleted"
    refusal = pytest.raises(IntegrityError, match=f"ck_{table}_record_status|CHECK constraint")
    with refusal, db.begin_nested():
        db.add(refused)
        db.flush()


@pytest.mark.parametrize("table", sorted(RECORDS))
def test_the_models_declare_the_check_the_migration_adds(table):
    checks = [c for c in Base.metadata.tables[table].constraints if isinstance(c, CheckConstraint)]
    assert [str(c.sqltext) for c in checks] == ["record_status IN ('valid', 'entered_in_error')"]


def test_one_severity_order_for_protocol_rules_alerts_and_replay():
    assert schema.SEVERITY_ORDER is rule_schema.SEVERITY_ORDER is SEVERITY_ORDER
    assert sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__) == ["info", "warning", "critical"]
    # every severity a protocol rule may name, and every alert severity, has its rank
    assert set(get_args(rule_schema.Severity)) == set(SEVERITY_ORDER) == set(AlertSeverity)
