"""The schema's own checks, including properties of conditions and condition groups."""

import re
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.clinical.measures import MEASURES
from app.protocols.schema import (
    AdverseEventMatch,
    Alerting,
    Arm,
    CompositeScoreRule,
    Condition,
    ConditionGroup,
    CssrsRule,
    Dosing,
    DosingSessionDefinition,
    MeasurementInterval,
    ProtocolInfo,
    Randomisation,
    ReferenceRange,
    Rule,
    RuleKind,
    SustainedRule,
    TrialFacts,
    TrialPhase,
    VisitDefinition,
    VitalsSchedule,
)

CODES = sorted(MEASURES)
property_test = settings(database=None, deadline=None, max_examples=200)


def messages(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [error["msg"] for error in exc.value.errors()]


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid condition: a known measure, its canonical unit, a value that can occur."""
    code = draw(st.sampled_from(CODES))
    measure = MEASURES[code]
    op = draw(st.sampled_from([">", ">=", "<", "<="]))
    value = draw(
        st.floats(
            min_value=measure.possible_min,
            max_value=measure.possible_max,
            exclude_min=op == "<",  # 'below the lowest possible reading' could never fire
            exclude_max=op == ">",
        )
    )
    return {"measure": code, "op": op, "value": value, "unit": measure.unit}


@property_test
@given(conditions())
def test_any_possible_value_in_the_canonical_unit_validates(data: dict[str, Any]) -> None:
    condition = Condition.model_validate(data)
    assert condition.value == data["value"]
    assert condition.unit == MEASURES[condition.measure].unit


@property_test
@given(conditions(), st.text(max_size=12))
def test_any_other_unit_is_a_unit_mismatch(data: dict[str, Any], unit: str) -> None:
    canonical = MEASURES[data["measure"]].unit
    if unit == canonical:
        return
    with pytest.raises(ValidationError) as caught:
        Condition.model_validate({**data, "unit": unit})
    (error,) = caught.value.errors()
    assert error["loc"] == ("unit",)
    assert f"unit mismatch: {data['measure']} rules are written in {canonical!r}" in error["msg"]


@property_test
@given(st.sampled_from(CODES), st.data())
def test_any_impossible_value_is_refused(code: str, data: st.DataObject) -> None:
    measure = MEASURES[code]
    value = data.draw(
        st.floats(max_value=measure.possible_min, exclude_max=True, allow_infinity=False)
        | st.floats(min_value=measure.possible_max, exclude_min=True, allow_infinity=False)
    )
    with pytest.raises(ValidationError) as caught:
        Condition.model_validate(
            {"measure": code, "op": ">=", "value": value, "unit": measure.unit}
        )
    (error,) = caught.value.errors()
    assert error["loc"] == ("value",)
    assert f"outside what {code} can measure" in error["msg"]


@property_test
@given(st.text(max_size=12).filter(lambda code: code not in MEASURES))
def test_any_unknown_measure_is_refused_naming_the_known_ones(code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Condition.model_validate({"measure": code, "op": ">", "value": 100, "unit": "mmHg"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("measure",)
    assert "known measures are SYSBP, DIABP, PULSE, RESP, TEMP, OXYSAT" in error["msg"]


@property_test
@given(st.lists(conditions(), min_size=1, max_size=8), st.sampled_from(["any", "all"]))
def test_any_non_empty_list_of_valid_conditions_makes_a_group(
    items: list[dict[str, Any]], combinator: str
) -> None:
    group = ConditionGroup.model_validate({combinator: items})
    assert group.combinator == combinator
    assert [c.model_dump() for c in group.conditions] == items
    assert set(group.measures()) == {item["measure"] for item in items}


@property_test
@given(st.lists(conditions(), min_size=1, max_size=3), st.lists(conditions(), max_size=3))
def test_a_group_with_both_any_and_all_is_refused(
    any_items: list[dict[str, Any]], all_items: list[dict[str, Any]]
) -> None:
    with pytest.raises(ValidationError):
        ConditionGroup.model_validate({"any": any_items, "all": all_items})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"any": []}, "empty condition group: an empty 'any' would never fire"),
        ({"all": []}, "empty condition group: an empty 'all' would always fire"),
        ({}, "needs exactly one of 'any' or 'all', not neither"),
        ({"none": []}, "Extra inputs are not permitted"),
    ],
)
def test_empty_or_shapeless_groups_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ConditionGroup.model_validate(data)
    assert any(message in text for text in messages(caught))


def test_conditions_that_can_never_be_true_are_refused() -> None:
    with pytest.raises(ValidationError, match="can never be true"):
        Condition(measure="SYSBP", op="<", value=40, unit="mmHg")
    with pytest.raises(ValidationError, match="can never be true"):
        Condition(measure="OXYSAT", op=">", value=100, unit="%")
    assert Condition(measure="OXYSAT", op=">=", value=100, unit="%").value == 100


def test_strings_and_booleans_are_not_numbers() -> None:
    for value in ("160", True, float("nan"), float("inf")):
        with pytest.raises(ValidationError):
            Condition.model_validate(
                {"measure": "SYSBP", "op": ">", "value": value, "unit": "mmHg"}
            )


# --- other models ------------------------------------------------------------------------------

RULE = {"id": "r", "severity": "warning", "title": "A rule.", "source": "a test"}
PULSE_OVER_110 = {"any": [{"measure": "PULSE", "op": ">", "value": 110, "unit": "beats/min"}]}


@pytest.mark.parametrize(
    "span",
    [{}, {"consecutive_readings": 3, "duration_minutes": 15}],
    ids=["neither", "both"],
)
def test_sustained_rule_needs_exactly_one_span(span: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="exactly one of consecutive_readings"):
        SustainedRule.model_validate({**RULE, "kind": "sustained", "when": PULSE_OVER_110, **span})


def test_sustained_rule_needs_two_readings_at_least() -> None:
    with pytest.raises(ValidationError):
        SustainedRule.model_validate(
            {**RULE, "kind": "sustained", "when": PULSE_OVER_110, "consecutive_readings": 1}
        )


def news2(severity: str, single: str | None, *levels: tuple[int, str]) -> dict[str, Any]:
    return {
        **RULE,
        "kind": "composite_score",
        "severity": severity,
        "score": "NEWS2",
        "levels": [{"at_least": at_least, "severity": s} for at_least, s in levels],
        "any_single_parameter_3": single,
    }


def test_composite_severity_is_the_highest_level() -> None:
    CompositeScoreRule.model_validate(news2("critical", "warning", (5, "warning"), (7, "critical")))
    with pytest.raises(ValidationError, match="must be the highest severity"):
        CompositeScoreRule.model_validate(news2("warning", None, (5, "warning"), (7, "critical")))
    with pytest.raises(ValidationError, match="outside NEWS2's range"):
        CompositeScoreRule.model_validate(news2("warning", None, (21, "warning")))
    with pytest.raises(ValidationError, match="listed twice"):
        CompositeScoreRule.model_validate(news2("warning", None, (5, "warning"), (5, "warning")))


def test_randomisation_block_must_hold_whole_ratios() -> None:
    Randomisation(ratio=[2, 1], block_size=6, stratify_by=["site"])
    with pytest.raises(ValidationError, match="not a multiple of the ratio total 3"):
        Randomisation(ratio=[2, 1], block_size=4, stratify_by=["site"])


def test_measurement_interval_checks() -> None:
    base = {"measures": ["PULSE"], "from_minute": 0, "to_minute": 240, "every_minutes": 30}
    MeasurementInterval.model_validate({**base, "grace_minutes": 29})
    with pytest.raises(ValidationError, match="must be shorter than every_minutes"):
        MeasurementInterval.model_validate({**base, "grace_minutes": 30})
    with pytest.raises(ValidationError, match="must be after from_minute"):
        MeasurementInterval.model_validate({**base, "from_minute": 240, "grace_minutes": 5})
    with pytest.raises(ValidationError, match="measure 'PULSE' is listed twice"):
        MeasurementInterval.model_validate(
            {**base, "measures": ["PULSE", "PULSE"], "grace_minutes": 5}
        )


def test_dosing_maximum_without_supplemental() -> None:
    DosingSessionDefinition(visit="EXP1", initial_mg=[25], supplemental=None, max_total_mg=25)
    with pytest.raises(ValidationError, match=r"\(25 mg initial = 25 mg\)"):
        DosingSessionDefinition(visit="EXP1", initial_mg=[25], supplemental=None, max_total_mg=20)


def test_supplemental_must_be_written_out() -> None:
    with pytest.raises(ValidationError, match="Field required"):
        DosingSessionDefinition.model_validate(
            {"visit": "EXP1", "initial_mg": [25], "max_total_mg": 25}
        )


def test_a_reference_range_is_in_the_sdtm_unit_in_order_and_possible() -> None:
    good = {"measure": "PULSE", "low": 60, "high": 100, "unit": "beats/min", "source": "ref"}
    assert ReferenceRange.model_validate(good).high == 100
    for change, words in (
        ({"unit": "/min"}, "PULSE ranges are in beats/min"),
        ({"low": 100, "high": 60}, "low (100) must be below high (60)"),
        ({"high": 400}, "within what can be measured"),
        ({"measure": "GLUC"}, "GLUC"),
        ({"source": " "}, "source"),
        ({"low": "60"}, "low"),
    ):
        with pytest.raises(ValidationError) as exc:
            ReferenceRange.model_validate(good | change)
        assert words in str(exc.value), change


def test_a_trial_phase_is_a_cdisc_tphase_term() -> None:
    assert TrialPhase.model_validate({"value": "PHASE III TRIAL", "source": "a"}).value
    for wrong in ("Phase 3", "PHASE 3", "phase iii trial", "PHASE V TRIAL"):
        with pytest.raises(ValidationError) as exc:
            TrialPhase.model_validate({"value": wrong, "source": "a"})
        message = str(exc.value)
        assert f"unknown trial phase {wrong!r}" in message
        assert "give a CDISC TPHASE term" in message and "PHASE II TRIAL" in message


def test_trial_facts_are_each_sourced_and_optional() -> None:
    assert TrialFacts.model_validate({}) == TrialFacts()
    indication = {"text": "Posttraumatic stress disorder", "snomed_ct": "47505003", "source": "a"}
    assert TrialFacts.model_validate({"indication": indication}).indication is not None
    for section, value, words in (
        ("indication", indication | {"snomed_ct": "F43.1"}, "snomed_ct"),
        ("indication", indication | {"snomed_ct": 47505003}, "snomed_ct"),
        ("indication", {"text": "PTSD"}, "source"),
        ("sponsor", {"name": " ", "source": "a"}, "name"),
        ("planned_subjects", {"value": 0, "source": "a"}, "greater than 0"),
        ("planned_subjects", {"value": "100", "source": "a"}, "value"),
        ("sites", {"value": 2}, "sites"),
    ):
        with pytest.raises(ValidationError) as exc:
            TrialFacts.model_validate({section: value})
        assert words in str(exc.value), (section, value)


def test_alerting_needs_both_deadlines_in_order() -> None:
    good = {"escalation": ["site_clinician"], "sae_report_within_hours": 24}
    Alerting.model_validate({**good, "acknowledge_within_minutes": {"critical": 10, "warning": 30}})
    with pytest.raises(ValidationError, match="deadline for: warning"):
        Alerting.model_validate({**good, "acknowledge_within_minutes": {"critical": 10}})
    with pytest.raises(ValidationError, match="may not wait longer"):
        Alerting.model_validate(
            {**good, "acknowledge_within_minutes": {"critical": 60, "warning": 30}}
        )


def test_adverse_event_match() -> None:
    assert AdverseEventMatch(min_ctcae_grade=3).serious is None
    with pytest.raises(ValidationError, match="empty adverse-event match"):
        AdverseEventMatch()
    with pytest.raises(ValidationError):
        AdverseEventMatch(special_interest_terms=[])
    with pytest.raises(ValidationError, match="listed twice"):
        AdverseEventMatch(special_interest_terms=["Syncope", "syncope"])
    with pytest.raises(ValidationError):
        AdverseEventMatch(min_ctcae_grade=6)


@pytest.mark.parametrize("items", [[], [0], [7], [4, 4]])
def test_cssrs_items_are_the_six_screener_items(items: list[int]) -> None:
    with pytest.raises(ValidationError):
        CssrsRule.model_validate({**RULE, "kind": "cssrs", "positive_items": items})


# --- the format reference stays true -----------------------------------------------------------

DOCS = Path(__file__).parents[2] / "docs" / "protocol-format.md"
SECTION_MODELS: dict[str, type[BaseModel]] = {
    "protocol": ProtocolInfo,
    "arms": Arm,
    "randomisation": Randomisation,
    "visits": VisitDefinition,
    "dosing": Dosing,
    "vitals_schedule": VitalsSchedule,
    "reference_ranges": ReferenceRange,
    "trial": TrialFacts,
    "alerting": Alerting,
}


def yaml_examples() -> list[Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    return [yaml.safe_load(block) for block in blocks]


def test_every_rule_kind_has_an_example_in_the_format_reference() -> None:
    rules = [item for example in yaml_examples() if isinstance(example, list) for item in example]
    assert {rule["kind"] for rule in rules} == set(get_args(RuleKind))
    for rule in rules:
        TypeAdapter(Rule).validate_python(rule)


def test_every_section_example_in_the_format_reference_validates() -> None:
    seen = set()
    for example in yaml_examples():
        if not isinstance(example, dict):
            continue
        for section, value in example.items():
            model = SECTION_MODELS[section]
            items = value if isinstance(value, list) else [value]
            for item in items:
                model.model_validate(item)
            seen.add(section)
    assert seen == set(SECTION_MODELS)
