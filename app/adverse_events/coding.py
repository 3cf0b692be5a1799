"""MedDRA coding of adverse events. Vigil ships no dictionary (MedDRA is licensed): a coder
looks the verbatim term up in their own licensed copy and records the version and the LLT, PT,
HLT, HLGT and primary SOC, each term with its code. The whole hierarchy is given at once (a
partial coding is refused, ``MeddraCoding``); re-coding replaces it, and the audit trail keeps
every earlier coding with who changed it, when and why. Coding is not covered by the
investigator's e-signature (app/audit/signed_records.py), so it neither voids one nor needs one.
The SDTM export reads it (AEDECOD and the other dictionary variables)."""

from sqlalchemy.orm import Session

from app.adverse_events.schemas import MeddraCoding, MeddraCodingRead, MeddraTermCode
from app.assessments.records import refuse_if_entered_in_error
from app.audit.recorder import change_reason
from app.errors import InvalidInput
from app.models import AdverseEvent

LEVELS = ("llt", "pt", "hlt", "hlgt", "soc")


def columns_of(coding: MeddraCoding) -> dict[str, str]:
    """The coding as the adverse event's meddra_* column values."""
    values = {"meddra_version": coding.meddra_version}
    for level in LEVELS:
        named: MeddraTermCode = getattr(coding, level)
        values[f"meddra_{level}"] = named.term
        values[f"meddra_{level}_code"] = named.code
    return values


def code(session: Session, event: AdverseEvent, coding: MeddraCoding) -> AdverseEvent:
    """Code (or re-code) ``event``; the reason goes to the audit trail with the old values."""
    refuse_if_entered_in_error(event, "adverse event")
    changed = {f: v for f, v in columns_of(coding).items() if getattr(event, f) != v}
    if not changed:
        raise InvalidInput("the coding changes nothing: the event is already coded so")
    with change_reason(session, coding.reason, "code_meddra"):
        for field, value in changed.items():
            setattr(event, field, value)
    return event


def coding_of(event: AdverseEvent) -> MeddraCodingRead | None:
    if not event.coded:
        return None
    levels = {
        level: MeddraTermCode(
            term=getattr(event, f"meddra_{level}"), code=getattr(event, f"meddra_{level}_code")
        )
        for level in LEVELS
    }
    return MeddraCodingRead(meddra_version=event.meddra_version or "", **levels)
