"""A refused supplemental dose answers with one problem type per reason (app/rules/dose_limits.py
``Refusal``), so a client can tell a gate closed by vitals from a dose outside the window.

When several reasons hold, the first by ``Refusal``'s fixed priority names the problem (``type``,
``title``, ``status``); ``errors`` lists every reason, each with its own ``type``, ``field`` and
``message``: the same entries as the dose gate's ``reasons``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import PROBLEM_BASE, VigilError
from app.rules import GateCheck, GateReason
from app.rules.dose_limits import Refusal


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    description: str  # what it means and what answers it


PROBLEM_TYPES: dict[Refusal, ProblemType] = {
    Refusal.SESSION_NOT_IN_PROGRESS: ProblemType(
        409, "Session not in progress", "the dosing session is planned or has ended"
    ),
    Refusal.DOSE_AFTER_BASELINE: ProblemType(
        409, "Dose after return to baseline", "return to baseline was attested; no dose follows"
    ),
    Refusal.DOSE_ORDER: ProblemType(
        422,
        "Dose out of order",
        "a supplemental dose needs an initial dose recorded before it; nothing waives it",
    ),
    Refusal.THERAPISTS_NOT_PRESENT: ProblemType(
        422,
        "Therapist pair not present",
        "the protocol requires both therapists attested present before the initial dose; "
        "deviation_reason records a dose given without them",
    ),
    Refusal.DOSE_NOT_ALLOWED: ProblemType(
        422,
        "Dose not allowed",
        "the protocol allows no supplemental dose at this visit; deviation_reason records it",
    ),
    Refusal.DOSE_ALREADY_GIVEN: ProblemType(
        422,
        "Dose already given",
        "the protocol allows one supplemental dose; deviation_reason records another",
    ),
    Refusal.DOSE_AMOUNT: ProblemType(
        422,
        "Dose amount",
        "the amount is not the protocol's (a fraction of the initial dose); deviation_reason "
        "records it",
    ),
    Refusal.DOSE_MAX_TOTAL: ProblemType(
        422,
        "Dose above the session maximum",
        "the session total would pass the protocol maximum; deviation_reason records it",
    ),
    Refusal.DOSE_OUTSIDE_WINDOW: ProblemType(
        422,
        "Dose outside the window",
        "administered_at is outside the protocol's supplemental window; deviation_reason "
        "records it",
    ),
    Refusal.GATE_OPEN_ALERT: ProblemType(
        409,
        "Dose gate closed by an open alert",
        "an alert the dose gate blocks on is open; a clinician's gate_override_reason answers it",
    ),
    Refusal.GATE_STALE_VITALS: ProblemType(
        409,
        "Dose gate closed: vitals missing or too old",
        "a measure the dose gate needs is missing or too old: measure again; a clinician's "
        "gate_override_reason answers it",
    ),
    Refusal.GATE_VITALS: ProblemType(
        409,
        "Dose gate closed by vitals",
        "the latest vitals meet the dose gate's block condition; a clinician's "
        "gate_override_reason answers it",
    ),
}

HINTS = {
    GateCheck.DOSE_LIMITS: "To record a dose given against the protocol, send deviation_reason",
    GateCheck.CLINICAL: "The supplemental dose gate is closed; a clinician may give it anyway "
    "with gate_override_reason",
}


def type_uri(refusal: Refusal) -> str:
    return f"{PROBLEM_BASE}{refusal.value}"


def reason_entry(reason: GateReason) -> dict[str, str]:
    """One reason as the gate lists it and a refusal's ``errors`` carries it."""
    return {"type": type_uri(reason.refusal), "field": reason.field, "message": reason.text}


class DoseRefused(VigilError):
    """A supplemental dose refused for ``reasons`` (sorted by priority, at least one)."""

    def __init__(self, reasons: Sequence[GateReason]) -> None:
        first = PROBLEM_TYPES[reasons[0].refusal]
        self.status_code = first.status
        self.title = first.title
        self.slug = reasons[0].refusal.value
        hints = [
            HINTS[check] for check in dict.fromkeys(r.check for r in reasons) if check in HINTS
        ]
        detail = "; ".join(reason.text for reason in reasons) + "".join(f". {h}" for h in hints)
        errors: list[dict[str, Any]] = [reason_entry(reason) for reason in reasons]
        super().__init__(detail, errors=errors)


GENERAL = {
    409: "The request conflicts with the record's state; nothing was changed",
    422: "Invalid input: `errors` names each field and what is wrong with it",
}


def documented(statuses: Sequence[int]) -> dict[int | str, dict[str, Any]]:
    """The route's ``responses=``: each status with the problem types it answers with."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        kinds = [
            f"`{refusal.value}` ({kind.title}): {kind.description}"
            for refusal, kind in PROBLEM_TYPES.items()
            if kind.status == status
        ]
        responses[status] = {
            "description": f"{GENERAL[status]}. A refused supplemental dose is typed "
            f"{PROBLEM_BASE}<slug> by its first reason in this order, and `errors` lists every "
            "reason with its own `type`: " + "; ".join(kinds)
        }
    return responses
