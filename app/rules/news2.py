"""NEWS2 (Royal College of Physicians 2017), scored reading by reading.

The bands, as in DESIGN.md (score 3/2/1/0/1/2/3):

=================  =====  =====  =======  ========  =========  =======  =====
parameter          3      2      1        0         1          2        3
=================  =====  =====  =======  ========  =========  =======  =====
respiration rate   <=8           9-11     12-20               21-24    >=25
SpO2 (scale 1)     <=91   92-93  94-95    >=96
systolic BP        <=90   91-100 101-110  111-219                       >=220
pulse              <=40          41-50    51-90     91-110     111-130  >=131
temperature        <=35.0        35.1-36  36.1-38   38.1-39.0  >=39.1
=================  =====  =====  =======  ========  =========  =======  =====

Supplemental oxygen scores 2 and new confusion 3. Each band is read as "at most its upper
limit", so a value between two published bands (resp 11.5, temperature 38.05) falls in the band
above the lower one's limit. A reading missing a parameter is scored on what it has, and the
finding names what was not measured: each missing parameter scores 0 or more, so the score of a
partial reading is a lower bound and a finding on it is never a false alarm.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from app.protocols.schema import SEVERITY_ORDER, CompositeScoreRule, Severity
from app.rules import wording
from app.rules.findings import Finding, RuleContext
from app.rules.snapshot import Reading


@dataclass(frozen=True)
class Bands:
    upper_limits: tuple[tuple[float, int], ...]  # (highest value in the band, score), rising
    above: int  # the score above the last limit

    def score(self, value: float) -> int:
        for limit, points in self.upper_limits:
            if value <= limit:
                return points
        return self.above


BANDS: dict[str, Bands] = {
    "RESP": Bands(((8, 3), (11, 1), (20, 0), (24, 2)), above=3),
    "OXYSAT": Bands(((91, 3), (93, 2), (95, 1)), above=0),
    "SYSBP": Bands(((90, 3), (100, 2), (110, 1), (219, 0)), above=3),
    "PULSE": Bands(((40, 3), (50, 1), (90, 0), (110, 1), (130, 2)), above=3),
    "TEMP": Bands(((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)), above=2),
}
PARAMETERS = tuple(BANDS)  # the measured ones, in the order the score card lists them
SUPPLEMENTAL_OXYGEN_SCORE = 2
NEW_CONFUSION_SCORE = 3
OXYGEN, CONSCIOUSNESS = "supplemental_oxygen", "new_confusion"


def band_score(code: str, value: float) -> int:
    return BANDS[code].score(value)


@dataclass(frozen=True)
class News2Score:
    total: int
    parts: Mapping[str, int] = field(hash=False)  # parameter -> its score, present ones only
    missing: tuple[str, ...]  # measured parameters the reading lacks

    @property
    def single_parameter_3(self) -> tuple[str, ...]:
        return tuple(name for name, points in self.parts.items() if points == 3)


def news2(reading: Reading) -> News2Score:
    parts = {
        code: band_score(code, reading.values[code]) for code in PARAMETERS if reading.has(code)
    }
    parts[OXYGEN] = SUPPLEMENTAL_OXYGEN_SCORE if reading.supplemental_oxygen else 0
    parts[CONSCIOUSNESS] = NEW_CONFUSION_SCORE if reading.new_confusion else 0
    missing = tuple(code for code in PARAMETERS if not reading.has(code))
    return News2Score(sum(parts.values()), MappingProxyType(parts), missing)


def _part_text(reading: Reading, name: str, points: int) -> str:
    if name == OXYGEN:
        return f"supplemental oxygen: {points}"
    if name == CONSCIOUSNESS:
        return f"new confusion: {points}"
    return (
        f"{wording.MEASURE_NAMES[name]} {wording.with_unit(name, reading.values[name])}: {points}"
    )


def composite_findings(ctx: RuleContext, rule: CompositeScoreRule) -> Iterator[Finding]:
    levels = sorted(rule.levels, key=lambda level: level.at_least)
    thresholds = [
        f"NEWS2 >= {level.at_least}: {level.severity}"
        + (", escalated at once" if level.escalate_at_once else "")
        for level in levels
    ]
    if rule.any_single_parameter_3 is not None:
        thresholds.append(f"any single parameter scoring 3: {rule.any_single_parameter_3}")
    for reading in ctx.snapshot.readings:
        if ctx.settled(reading.measured_at):
            continue
        score = news2(reading)
        reached = [level for level in levels if score.total >= level.at_least]
        severities: list[Severity] = [reached[-1].severity] if reached else []
        reasons = [f"the total is at least {reached[-1].at_least}"] if reached else []
        threes = score.single_parameter_3
        if threes and rule.any_single_parameter_3 is not None:
            severities.append(rule.any_single_parameter_3)
            names = wording.and_list(
                [wording.MEASURE_NAMES.get(n, n.replace("_", " ")) for n in threes]
            )
            reasons.append(f"{names} {'scores' if len(threes) == 1 else 'score'} 3 on its own")
        if not severities:
            continue
        highest: Severity = max(severities, key=SEVERITY_ORDER.__getitem__)
        at_once = (rule.escalate_at_once or bool(reached and reached[-1].escalate_at_once)) and (
            highest == "critical"
        )
        parts = [
            _part_text(reading, name, points)
            for name, points in score.parts.items()
            if name in PARAMETERS or points
        ]
        missing = ""
        if score.missing:
            names = ", ".join(wording.MEASURE_NAMES[code] for code in score.missing)
            missing = f"; not measured: {names} (the full score may be higher)"
        at = ctx.moment(reading.measured_at)
        yield ctx.finding(
            at=reading.measured_at,
            message=(
                f"NEWS2 {score.total} at {at}: {' and '.join(reasons)}. "
                f"Scores: {'; '.join(parts)}{missing}."
            ),
            observed={
                "NEWS2": score.total,
                **{code: reading.values[code] for code in PARAMETERS if reading.has(code)},
                **{f"{name}_score": points for name, points in score.parts.items()},
                "missing": ", ".join(score.missing),
            },
            thresholds=thresholds,
            evidence=[reading.id],
            severity=highest,
            escalate_at_once=at_once,
        )
