"""Recording doses: the protocol's dose limits (app/rules/dose_limits.py) and its therapist pair
before the initial dose, a deviation reason for a dose given against them, the supplemental dose
gate (app/dosing/dose_gate.py) and a clinician's override of it; and marking a dose entered in
error."""

from sqlalchemy.orm import Session

from app import clock
from app.alerts import evaluation, withdrawal
from app.audit.recorder import change_reason
from app.dosing import dose_gate, service
from app.dosing.refusals import DoseRefused
from app.dosing.schemas import DoseCreate, DosingSessionStatus
from app.errors import Conflict, Forbidden, ProtocolViolation
from app.models import Dose, DosingSession
from app.rules import GateCheck, dose_limits
from app.time_bounds import Bound
from app.vocabulary import RecordStatus

S = DosingSessionStatus


# --- doses --------------------------------------------------------------------------------------


GATE_OVERRIDE = "gate override: "


def record_dose(
    session: Session,
    dosing_session: DosingSession,
    data: DoseCreate,
    *,
    overridden_by_clinician: bool = False,
) -> Dose:
    """Record a dose if the protocol allows it, or as a deviation when a reason is given.

    A supplemental dose is judged as the dose gate judges it (app/dosing/dose_gate.py), as known
    at its administered_at: the dose limits (window, amount, doses already given) are answered
    by deviation_reason, the gate's rules (readings, open alerts) only by a clinician's
    gate_override_reason; each reason left unanswered refuses it with its own problem type.
    """
    service.lock(session, dosing_session)
    if data.kind.value == "supplemental":
        return _record_supplemental(session, dosing_session, data, overridden_by_clinician)
    if dosing_session.status != S.IN_PROGRESS.value:
        raise Conflict(
            f"dosing session is {dosing_session.status}; doses are recorded while it is in progress"
        )
    assert dosing_session.started_at is not None
    started = Bound(dosing_session.started_at, "the session started")
    service.check_time("administered_at", data.administered_at, started)
    if dosing_session.baseline_attested_at is not None:
        raise Conflict(
            "return to baseline was attested at "
            f"{dosing_session.baseline_attested_at.isoformat()}; no dose can follow it"
        )
    valid = service.valid_doses(service.doses_of(session, dosing_session))
    structural = dose_limits.structural_problems(data.kind.value, data.administered_at, valid)
    if structural:
        raise ProtocolViolation(
            "; ".join(p.message for p in structural), errors=[p.as_error() for p in structural]
        )
    definition = service.dosing_definition(session, dosing_session)
    problems = dose_limits.protocol_problems(
        definition, data.kind.value, data.amount_mg, data.administered_at, valid
    ) + dose_limits.presence_problems(
        service.therapists_required(session, dosing_session),
        data.kind.value,
        data.administered_at,
        dosing_session.therapists_present_at,
    )
    if problems and not data.deviation_reason:
        raise ProtocolViolation(
            "; ".join(p.message for p in problems)
            + "; to record a dose given against the protocol, send deviation_reason",
            errors=[p.as_error() for p in problems],
        )
    _check_deviation_reason(data, [p.message for p in problems])
    if data.gate_override_reason:
        _check_gate_override([], data, overridden_by_clinician)
    return _store(session, dosing_session, data, [p.message for p in problems], [])


def _record_supplemental(
    session: Session, dosing_session: DosingSession, data: DoseCreate, by_clinician: bool
) -> Dose:
    decision = dose_gate.judge_supplemental(
        session, dosing_session, data.administered_at, data.amount_mg, field="administered_at"
    )
    unanswered = [
        reason
        for reason in decision.why
        if reason.check is GateCheck.SESSION
        or (reason.check is GateCheck.DOSE_LIMITS and not data.deviation_reason)
        or (reason.check is GateCheck.CLINICAL and not data.gate_override_reason)
    ]
    if unanswered:
        raise DoseRefused(unanswered)
    limits = decision.reasons_of(GateCheck.DOSE_LIMITS)
    gate_reasons = decision.reasons_of(GateCheck.CLINICAL)
    _check_deviation_reason(data, limits)
    _check_gate_override(gate_reasons, data, by_clinician)
    return _store(session, dosing_session, data, limits, gate_reasons)


def _check_deviation_reason(data: DoseCreate, problems: list[str]) -> None:
    if data.deviation_reason and not problems:
        raise service.field_error(
            "deviation_reason",
            "the dose follows the protocol, so there is no deviation to explain; leave it out",
        )


def _store(
    session: Session,
    dosing_session: DosingSession,
    data: DoseCreate,
    problems: list[str],
    gate_reasons: list[str],
) -> Dose:
    """The dose, with the deviation and the override it was given with, audited."""
    stored_reason = "; ".join(
        reason
        for reason in (
            GATE_OVERRIDE + data.gate_override_reason if data.gate_override_reason else None,
            data.deviation_reason,
        )
        if reason
    )
    dose = Dose(
        dosing_session_id=dosing_session.id,
        kind=data.kind.value,
        amount_mg=data.amount_mg,
        administered_at=data.administered_at,
        recorded_at=clock.utcnow(),
        deviation_reason=stored_reason or None,
    )
    audit_reasons = []
    if problems:
        audit_reasons.append(
            "protocol deviation: "
            + "; ".join(problems)
            + f". Reason given: {data.deviation_reason}"
        )
    if gate_reasons:
        audit_reasons.append(
            "supplemental dose given while the dose gate was closed ("
            + "; ".join(gate_reasons)
            + f"); clinician's override: {data.gate_override_reason}"
        )
    if audit_reasons:
        with change_reason(session, " ".join(audit_reasons)):
            session.add(dose)
    else:
        session.add(dose)
        session.flush()
    # the dose and the alerts it causes (e.g. given while the gate was closed) commit together
    evaluation.raise_alerts(session, dosing_session, clock.utcnow())
    return dose


def _check_gate_override(
    gate_reasons: list[str], data: DoseCreate, overridden_by_clinician: bool
) -> None:
    """A closed gate needs a clinician's override reason (refused before this without one); an
    open one needs none."""
    if not gate_reasons:
        if data.gate_override_reason:
            raise service.field_error(
                "gate_override_reason",
                "the dose gate is open (or this is not a supplemental dose), so there is "
                "nothing to override; leave it out",
            )
        return
    if not overridden_by_clinician:
        raise Forbidden(
            "only a clinician may override the closed supplemental dose gate ("
            + "; ".join(gate_reasons)
            + ")"
        )


def enter_dose_in_error(session: Session, dose: Dose, reason: str) -> Dose:
    """Mark a dose entered in error: kept forever, left out of totals and window checks. Its
    session is judged again without it, and what the dose was evidence for (the due times
    counted from it, a dose through a closed gate) is withdrawn."""
    dosing_session = service.get(session, dose.dosing_session_id)
    service.lock(session, dosing_session)
    if dose.record_status == RecordStatus.ENTERED_IN_ERROR.value:
        raise Conflict(f"dose {dose.id} is already marked entered in error ({dose.error_reason})")
    with change_reason(session, reason, "entered_in_error"):
        dose.record_status = RecordStatus.ENTERED_IN_ERROR.value
        dose.error_reason = reason
    withdrawal.record_entered_in_error(session, dose.id, reason, [dosing_session])
    return dose
