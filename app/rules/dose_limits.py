"""What the protocol allows for one dose: pure checks, no database.

Each check returns the problems found, each naming the request field to fix, the kind of
refusal (:class:`Refusal`, which the API answers as a problem type of its own) and saying what the
protocol allows, so the same text can refuse a dose or explain a recorded deviation.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Protocol as Interface

from app.protocols.schema import DosingSessionDefinition
from app.rules import wording

AMOUNT_TOLERANCE_MG = 1e-6


class DoseLike(Interface):
    """A recorded dose or a snapshot's (read only)."""

    @property
    def kind(self) -> str: ...

    @property
    def amount_mg(self) -> float: ...

    @property
    def administered_at(self) -> datetime: ...


class Refusal(StrEnum):
    """Why a supplemental dose is refused (or the dose gate closed), in a fixed priority: when
    several hold, the first in this order names the refusal. The values are problem type slugs."""

    SESSION_NOT_IN_PROGRESS = "session-not-in-progress"
    DOSE_AFTER_BASELINE = "dose-after-baseline"
    DOSE_ORDER = "dose-order"
    THERAPISTS_NOT_PRESENT = "therapists-not-present"
    DOSE_NOT_ALLOWED = "dose-not-allowed"
    DOSE_ALREADY_GIVEN = "dose-already-given"
    DOSE_AMOUNT = "dose-amount"
    DOSE_MAX_TOTAL = "dose-max-total"
    DOSE_OUTSIDE_WINDOW = "dose-outside-window"
    GATE_OPEN_ALERT = "dose-gate-open-alert"
    GATE_STALE_VITALS = "dose-gate-stale-vitals"
    GATE_VITALS = "dose-gate-vitals"


PRIORITY = {refusal: rank for rank, refusal in enumerate(Refusal)}


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    refusal: Refusal

    def as_error(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def _mg(amount: float) -> str:
    return f"{amount:g} mg"


def _same_amount(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=AMOUNT_TOLERANCE_MG)


def minutes_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / 60


def initial_dose(doses: Sequence[DoseLike]) -> DoseLike | None:
    return next((dose for dose in doses if dose.kind == "initial"), None)


def structural_problems(
    kind: str, administered_at: datetime, valid_doses: Sequence[DoseLike]
) -> list[Problem]:
    """Order rules no deviation reason can waive: one initial dose, and it comes first."""
    initial = initial_dose(valid_doses)
    if kind == "initial":
        if initial is not None:
            return [
                Problem(
                    "kind",
                    f"this session already has an initial dose ({_mg(initial.amount_mg)} at "
                    f"{initial.administered_at.isoformat()}); to correct it, mark it entered in "
                    "error and record the right one",
                    Refusal.DOSE_ALREADY_GIVEN,
                )
            ]
        # Only left when an earlier initial dose was entered in error.
        supplementals = [d for d in valid_doses if d.administered_at <= administered_at]
        if supplementals:
            return [
                Problem(
                    "administered_at",
                    "the initial dose must be given before the supplemental dose recorded at "
                    f"{supplementals[0].administered_at.isoformat()}",
                    Refusal.DOSE_ORDER,
                )
            ]
        return []
    if initial is None:
        return [
            Problem(
                "kind",
                "a supplemental dose needs the initial dose recorded first",
                Refusal.DOSE_ORDER,
            )
        ]
    if administered_at <= initial.administered_at:
        return [
            Problem(
                "administered_at",
                "a supplemental dose must be given after the initial dose "
                f"({initial.administered_at.isoformat()})",
                Refusal.DOSE_ORDER,
            )
        ]
    return []


def protocol_problems(
    definition: DosingSessionDefinition,
    kind: str,
    amount_mg: float,
    administered_at: datetime,
    valid_doses: Sequence[DoseLike],
    zone: tzinfo = UTC,
) -> list[Problem]:
    """Where a dose departs from the protocol; a deviation reason may waive these. Times in
    the messages are on ``zone``'s wall clock (the site's)."""
    visit = definition.visit
    problems = []
    if kind == "initial":
        if not any(_same_amount(amount_mg, allowed) for allowed in definition.initial_mg):
            allowed_text = " or ".join(_mg(a) for a in definition.initial_mg)
            problems.append(
                Problem(
                    "amount_mg",
                    f"initial dose {_mg(amount_mg)} is not an amount the protocol allows at "
                    f"{visit} ({allowed_text})",
                    Refusal.DOSE_AMOUNT,
                )
            )
    else:
        problems += _supplemental_problems(
            definition, amount_mg, administered_at, valid_doses, zone
        )
    total = amount_mg + sum(dose.amount_mg for dose in valid_doses)
    if total > definition.max_total_mg + AMOUNT_TOLERANCE_MG:
        problems.append(
            Problem(
                "amount_mg",
                f"the session total would be {_mg(total)}, above the protocol maximum of "
                f"{_mg(definition.max_total_mg)} at {visit}",
                Refusal.DOSE_MAX_TOTAL,
            )
        )
    return problems


def _supplemental_problems(
    definition: DosingSessionDefinition,
    amount_mg: float,
    administered_at: datetime,
    valid_doses: Sequence[DoseLike],
    zone: tzinfo,
) -> list[Problem]:
    supplemental = definition.supplemental
    if supplemental is None:
        return [
            Problem(
                "kind",
                f"the protocol allows no supplemental dose at {definition.visit}",
                Refusal.DOSE_NOT_ALLOWED,
            )
        ]
    problems = []
    given = [dose for dose in valid_doses if dose.kind == "supplemental"]
    if given:
        problems.append(
            Problem(
                "kind",
                f"a supplemental dose was already given at "
                f"{wording.clock(given[0].administered_at, zone)}; the protocol allows one",
                Refusal.DOSE_ALREADY_GIVEN,
            )
        )
    initial = initial_dose(valid_doses)
    if initial is None:  # refused by structural_problems before this is asked
        return problems
    expected = initial.amount_mg * supplemental.fraction_of_initial
    if not _same_amount(amount_mg, expected):
        problems.append(
            Problem(
                "amount_mg",
                f"supplemental dose {_mg(amount_mg)} is not {supplemental.fraction_of_initial:g} "
                f"x the {_mg(initial.amount_mg)} initial dose ({_mg(expected)})",
                Refusal.DOSE_AMOUNT,
            )
        )
    minutes = minutes_between(initial.administered_at, administered_at)
    window = supplemental.window_minutes
    if not window.start <= minutes <= window.end:
        nearest = window.start if minutes < window.start else window.end
        opens_at = initial.administered_at + timedelta(minutes=window.start)
        closes_at = initial.administered_at + timedelta(minutes=window.end)
        after = wording.duration_beyond(minutes * 60, nearest * 60, hours=False)
        problems.append(
            Problem(
                "administered_at",
                f"supplemental dose at {after} after the initial dose is outside the protocol "
                f"window {window.start}-{window.end} min "
                f"({wording.clock(opens_at, zone)} to {wording.clock(closes_at, zone)})",
                Refusal.DOSE_OUTSIDE_WINDOW,
            )
        )
    return problems


def supplemental_window(
    definition: DosingSessionDefinition, valid_doses: Sequence[DoseLike]
) -> tuple[datetime, datetime] | None:
    """When the supplemental dose may be given, or None (no initial dose, or none allowed)."""
    initial = initial_dose(valid_doses)
    if initial is None or definition.supplemental is None:
        return None
    window = definition.supplemental.window_minutes
    return (
        initial.administered_at + timedelta(minutes=window.start),
        initial.administered_at + timedelta(minutes=window.end),
    )


def presence_problems(
    therapists_required: int, kind: str, administered_at: datetime, present_at: datetime | None
) -> list[Problem]:
    """The initial dose of a protocol that requires a co-therapist pair waits until both are
    attested present (at or before the dose)."""
    if kind != "initial" or therapists_required < 2:
        return []
    if present_at is None:
        return [
            Problem(
                "therapists",
                "the protocol requires two therapists present before the initial dose, and "
                "the pair has not been attested present (POST "
                "/dosing-sessions/{id}/therapist-attestations)",
                Refusal.THERAPISTS_NOT_PRESENT,
            )
        ]
    if present_at > administered_at:
        return [
            Problem(
                "therapists",
                f"the therapist pair was attested present at {present_at.isoformat()}, after "
                f"the initial dose at {administered_at.isoformat()}; the protocol requires "
                "two therapists present before it",
                Refusal.THERAPISTS_NOT_PRESENT,
            )
        ]
    return []
