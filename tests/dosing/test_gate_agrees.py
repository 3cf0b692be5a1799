"""The dose gate foretells recording the dose: for any session state, the gate with ``as_of`` and
``amount_mg`` is open exactly when recording that supplemental dose, given at ``as_of``, is
accepted without a deviation or an override reason; when it is closed, the refusal lists the
gate's reasons, with the same types, fields and messages."""

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app.dosing import doses
from app.dosing.dose_gate import judge_supplemental
from app.dosing.refusals import DoseRefused, reason_entry
from app.dosing.schemas import DoseCreate
from app.models import Alert, Dose, Participant, VitalReading
from tests.factories.alerts import make_alert
from tests.factories.dosing import T0, make_dosing_session

DOSED_AT = T0 + timedelta(minutes=30)  # 80 mg at EXP1: 40 mg within T+90..T+150, 120 mg at most
MINUTE = 60

# Times are drawn around the moment judged (as_of), where the gate's edges are.
readings = st.lists(
    st.tuples(
        st.integers(-10 * MINUTE, 40 * MINUTE),  # measured that long before as_of (or after)
        st.integers(0, 20 * MINUTE),  # then received, seconds later
        st.sampled_from([122.0, 165.0]),  # systolic BP; 165 meets the gate's block_if
        st.sampled_from(["valid", "valid", "valid", "entered_in_error"]),
    ),
    max_size=4,
)
alerts = st.lists(
    st.tuples(
        st.integers(-30 * MINUTE, 60 * MINUTE),  # first found that long before as_of
        st.none() | st.integers(0, 60 * MINUTE),  # resolved that much later, or open
        st.sampled_from(["critical", "warning"]),
    ),
    max_size=2,
)
# as_of, in seconds after the initial dose: mostly about the window (90-150 min), at times
# anywhere in the session
as_of_seconds = st.integers(85 * MINUTE, 160 * MINUTE) | st.integers(-25 * MINUTE, 200 * MINUTE)


def _build(db, participant, state, as_of):
    ds = make_dosing_session(db, participant, initial_dose_mg=80)
    for before, delay, systolic, status in state["readings"]:
        measured_at = max(T0, as_of - timedelta(seconds=before))
        db.add(
            VitalReading(
                id=uuid.uuid4(),
                dosing_session_id=ds.id,
                measured_at=measured_at,
                received_at=measured_at + timedelta(seconds=delay),
                source="test",
                sysbp_mmhg=systolic,
                diabp_mmhg=80.0,
                pulse_bpm=76.0,
                temp_c=36.8,
                reported={},
                record_status=status,
                error_reason="wrong cuff" if status != "valid" else None,
            )
        )
    for i, (before, resolved_after, severity) in enumerate(state["alerts"]):
        found_at = max(T0, as_of - timedelta(seconds=before))
        alert, _ = make_alert(db, ds, found_at=found_at, rule_id=f"rule-{i}", severity=severity)
        if resolved_after is not None:
            alert.status = "resolved"
            alert.resolved_at = found_at + timedelta(seconds=resolved_after)
    if state["supplemental_given"]:
        db.add(
            Dose(
                dosing_session_id=ds.id,
                kind="supplemental",
                amount_mg=40.0,
                administered_at=DOSED_AT + timedelta(minutes=100),
            )
        )
    if state["ended"]:
        ds.status = "ended"
        ds.ended_at = DOSED_AT + timedelta(minutes=201)
    db.flush()
    return ds


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    state=st.fixed_dictionaries(
        {
            "readings": readings,
            "alerts": alerts,
            "supplemental_given": st.sampled_from([False, False, False, True]),
            "ended": st.sampled_from([False] * 7 + [True]),
        }
    ),
    as_of_seconds=as_of_seconds,
    amount_mg=st.sampled_from([40.0, 40.0, 20.0, 60.0]),
)
def test_the_gate_is_open_exactly_when_the_dose_is_recorded_without_a_reason(
    db: Session, participant: Participant, state, as_of_seconds, amount_mg
):
    example = db.begin_nested()
    try:
        as_of = DOSED_AT + timedelta(seconds=as_of_seconds)
        ds = _build(db, participant, state, as_of)
        decision = judge_supplemental(db, ds, as_of, amount_mg, field="administered_at")
        data = DoseCreate.model_validate(
            {"kind": "supplemental", "amount_mg": amount_mg, "administered_at": as_of.isoformat()}
        )
        refused = None
        attempt = db.begin_nested()
        try:
            doses.record_dose(db, ds, data)
        except DoseRefused as exc:
            refused = exc
        finally:
            attempt.rollback()
        assert decision.open is (refused is None), decision.reasons
        if refused is not None:
            assert refused.errors == [reason_entry(reason) for reason in decision.why]
            assert refused.slug == decision.why[0].refusal.value
    finally:
        example.rollback()
    assert db.query(Alert).count() == 0
