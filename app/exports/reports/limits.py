"""The limits a session's vitals are drawn against: every condition of the protocol's threshold
and sustained rules (the values its alerts fire at), per measure. Pure data from the protocol."""

from dataclasses import dataclass

from app.protocols.schema import Protocol, SustainedRule, ThresholdRule
from app.vocabulary import SEVERITY_ORDER


@dataclass(frozen=True, slots=True)
class Limit:
    measure: str  # SDTM code, e.g. SYSBP
    op: str  # ">=", ">", "<=", "<"
    value: float
    severity: str
    rule_id: str

    @property
    def label(self) -> str:
        return f"{self.rule_id} ({self.op} {self.value:g})"


def protocol_limits(protocol: Protocol) -> dict[str, list[Limit]]:
    """Each measure's limits, one per value and direction (the most severe rule's when two
    rules share one), most severe first."""
    best: dict[tuple[str, str, float], Limit] = {}
    rules: list[ThresholdRule | SustainedRule] = [
        *protocol.rules_of_kind("threshold"),
        *protocol.rules_of_kind("sustained"),
    ]
    for rule in rules:
        for condition in rule.when.conditions:
            limit = Limit(condition.measure, condition.op, condition.value, rule.severity, rule.id)
            key = (condition.measure, condition.op, condition.value)
            known = best.get(key)
            if known is None or SEVERITY_ORDER[limit.severity] > SEVERITY_ORDER[known.severity]:
                best[key] = limit
    by_measure: dict[str, list[Limit]] = {}
    for limit in best.values():
        by_measure.setdefault(limit.measure, []).append(limit)
    for limits in by_measure.values():
        limits.sort(key=lambda each: (-SEVERITY_ORDER[each.severity], each.value))
    return by_measure
