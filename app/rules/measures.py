"""Which measures a rule reads: the SDTM test codes an alert of the rule is about."""

from app.clinical.measures import MEASURES
from app.protocols.schema import (
    AnyRule,
    ChangeFromBaselineRule,
    CompositeScoreRule,
    DoseGateRule,
    OverdueMeasurementRule,
    RateOfChangeRule,
    SustainedRule,
    ThresholdRule,
)
from app.rules.news2 import PARAMETERS


def rule_measures(rule: AnyRule) -> list[str]:
    """The SDTM codes the rule compares, watches or scores, in the canonical measure order; none
    for the rules about records (adverse events, C-SSRS screens)."""
    codes: list[str]
    if isinstance(rule, ThresholdRule | SustainedRule):
        codes = rule.when.measures()
    elif isinstance(rule, ChangeFromBaselineRule | RateOfChangeRule):
        codes = [rule.measure]
    elif isinstance(rule, OverdueMeasurementRule):
        codes = list(rule.measures)
    elif isinstance(rule, CompositeScoreRule):
        codes = list(PARAMETERS)
    elif isinstance(rule, DoseGateRule):
        codes = rule.block_if.measures()
    else:
        codes = []
    return [code for code in MEASURES if code in codes]
