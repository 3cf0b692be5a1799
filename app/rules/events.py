"""Event rules: adverse events (serious, of special interest, by CTCAE grade) and C-SSRS screens.

An adverse event matches a rule when it meets every criterion the rule gives. A special-interest
term matches when it occurs inside the verbatim or the coded term, ignoring case, and treating
hyphens, underscores and runs of spaces alike: "chest pain" matches "Chest pain, left-sided",
"seizure" matches "Seizures" and "syncope" matches "presyncope". Over-matching is deliberate (an
AE of special interest missed is worse than one looked at twice); spelling variants (hyponatremia)
are not guessed, so a protocol lists them. An event without a CTCAE grade never meets
``min_ctcae_grade``.

The finding's ``at`` is ``site_aware_at``: when the site learnt of the event, which is also when
a reporting clock starts. With ``reporting_deadline_hours`` H, the report is due at
site_aware_at + H. Two more findings follow the clock: "deadline-near", a warning once less than
a quarter of the time is left (at due - H/4) and no sponsor report had been made by then, and
"deadline-passed", always critical, once the deadline passed without a report by then. Both are
at their own moment and share a dedup key, so the passed one escalates the near one.
"""

import re
from collections.abc import Iterator
from datetime import timedelta

from app.protocols.schema import AdverseEventMatch, AdverseEventRule, CssrsRule
from app.rules import wording
from app.rules.findings import Finding, RuleContext
from app.rules.snapshot import AdverseEvent

NEAR_FRACTION_LEFT = 0.25
CSSRS_ITEM_NAMES = {
    1: "wish to be dead",
    2: "non-specific active suicidal thoughts",
    3: "active suicidal ideation with methods",
    4: "active suicidal ideation with some intent to act",
    5: "active suicidal ideation with a specific plan and intent",
    6: "suicidal behaviour",
}


def normalise_term(text: str) -> str:
    return " ".join(re.sub(r"[-_]", " ", text.casefold()).split())


def matching_terms(terms: list[str], event: AdverseEvent) -> list[str]:
    said = [normalise_term(t) for t in (event.verbatim_term, event.coded_term) if t]
    return [term for term in terms if any(normalise_term(term) in text for text in said)]


def _why(match: AdverseEventMatch, event: AdverseEvent) -> list[str] | None:
    """The criteria the event meets, or None if it misses one."""
    why = []
    if match.serious is not None:
        if event.serious != match.serious:
            return None
        why.append("serious" if event.serious else "not serious")
    if match.special_interest_terms is not None:
        terms = matching_terms(match.special_interest_terms, event)
        if not terms:
            return None
        why.append(f"of special interest ({', '.join(repr(t) for t in terms)})")
    if match.min_ctcae_grade is not None:
        if event.ctcae_grade is None or event.ctcae_grade < match.min_ctcae_grade:
            return None
        why.append(f"CTCAE grade {event.ctcae_grade} (at least {match.min_ctcae_grade})")
    return why


def _thresholds(rule: AdverseEventRule) -> list[str]:
    match, out = rule.when, []
    if match.serious is not None:
        out.append(f"serious is {str(match.serious).lower()}")
    if match.special_interest_terms is not None:
        out.append(f"term contains one of: {', '.join(match.special_interest_terms)}")
    if match.min_ctcae_grade is not None:
        out.append(f"CTCAE grade >= {match.min_ctcae_grade}")
    if rule.reporting_deadline_hours is not None:
        out.append(f"report to the sponsor within {rule.reporting_deadline_hours} h")
    return out


def adverse_event_findings(ctx: RuleContext, rule: AdverseEventRule) -> Iterator[Finding]:
    thresholds = _thresholds(rule)
    for event in ctx.snapshot.adverse_events:
        why = _why(rule.when, event)
        if why is None:
            continue
        observed: dict[str, str | int | bool | None] = {
            "verbatim_term": event.verbatim_term,
            "serious": event.serious,
            "ctcae_grade": event.ctcae_grade,
            "onset_at": event.onset_at.isoformat(),
            "site_aware_at": event.site_aware_at.isoformat(),
        }
        known = (
            f"Adverse event {event.verbatim_term!r}, "
            f"onset {wording.date_time(event.onset_at, ctx.zone)}, "
            f"site aware {wording.date_time(event.site_aware_at, ctx.zone)}, "
            f"is {wording.and_list(why)}"
        )
        hours = rule.reporting_deadline_hours
        if hours is None:
            yield ctx.finding(
                at=event.site_aware_at,
                message=f"{known}.",
                observed=observed,
                thresholds=thresholds,
                evidence=[event.id],
                record_id=event.id,
            )
            continue
        due_at = event.site_aware_at + timedelta(hours=hours)
        reported_at = event.sponsor_reported_at
        if reported_at is not None and reported_at > ctx.snapshot.now:
            reported_at = None  # not made yet at now: the snapshot is as known at now
        observed["report_due_at"] = due_at.isoformat()
        observed["sponsor_reported_at"] = reported_at.isoformat() if reported_at else None
        report = (
            f"reported to the sponsor {wording.date_time(reported_at, ctx.zone)}"
            if reported_at is not None
            else "not yet reported to the sponsor"
        )
        yield ctx.finding(
            at=event.site_aware_at,
            message=(
                f"{known}; report it to the sponsor by {wording.date_time(due_at, ctx.zone)}, "
                f"within {hours} h; {report}."
            ),
            observed=observed,
            thresholds=thresholds,
            evidence=[event.id],
            record_id=event.id,
        )
        near_at = due_at - timedelta(hours=hours * NEAR_FRACTION_LEFT)
        owed = (
            f"The sponsor report of adverse event {event.verbatim_term!r} is due by "
            f"{wording.date_time(due_at, ctx.zone)}, {hours} h after the site learnt of it"
        )
        left = wording.duration(hours * 60 * NEAR_FRACTION_LEFT)
        for variant, at, tail in (
            (
                "deadline-near",
                near_at,
                f"less than {left} was left at "
                f"{wording.date_time(near_at, ctx.zone)} and it had not been made",
            ),
            ("deadline-passed", due_at, "the deadline passed without it"),
        ):
            if ctx.snapshot.now <= at or (reported_at is not None and reported_at <= at):
                continue
            yield ctx.finding(
                at=at,
                message=f"{owed}; {tail}.",
                observed=observed,
                thresholds=thresholds,
                evidence=[event.id],
                severity="warning" if variant == "deadline-near" else "critical",
                variant=variant,
                record_id=event.id,
                part="reporting",
            )


def cssrs_findings(ctx: RuleContext, rule: CssrsRule) -> Iterator[Finding]:
    items = sorted(rule.positive_items)
    thresholds = [f"C-SSRS yes on item {', '.join(str(i) for i in items)}"]
    for screen in ctx.snapshot.cssrs_screens:
        hits = sorted(screen.positive_items.intersection(items))
        if not hits:
            continue
        said = wording.and_list([f"item {i} ({CSSRS_ITEM_NAMES[i]})" for i in hits])
        at = ctx.moment(screen.administered_at)
        yield ctx.finding(
            at=screen.administered_at,
            message=f"C-SSRS screen at {at} is positive on {said}.",
            observed={"positive_items": ", ".join(str(i) for i in sorted(screen.positive_items))},
            thresholds=thresholds,
            evidence=[screen.id],
            record_id=screen.id,
        )
