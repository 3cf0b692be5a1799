"""The loader: shipped protocols load, broken ones are refused with precise issues."""

import hashlib
import itertools
import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from app.clinical.measures import MEASURES
from app.protocols.loader import (
    LoadedProtocol,
    ProtocolError,
    ProtocolIssue,
    load_protocol_file,
    parse_protocol_text,
)
from app.protocols.schema import (
    CompositeScoreRule,
    DoseGateRule,
    Protocol,
    RuleKind,
    ThresholdRule,
)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SHIPPED = ROOT / "protocols"
MDMA = SHIPPED / "mdma-ptsd-phase3.yaml"
PSILOCYBIN = SHIPPED / "psilocybin-single-session.yaml"
BROKEN = HERE / "broken"
MINIMAL = HERE / "valid" / "minimal.yaml"
ALL_KINDS = set(get_args(RuleKind))


def refuse(path: Path) -> list[ProtocolIssue]:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_file(path)
    return caught.value.issues


def refuse_text(text: str) -> list[ProtocolIssue]:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol_text(text, "test.yaml")
    return caught.value.issues


def marked_line(path: Path, label: str) -> int:
    """The 1-based line carrying the ``# expect: <label>`` comment in a broken file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [n for n, line in enumerate(lines, start=1) if line.endswith(f"# expect: {label}")]
    assert len(found) == 1, f"{path.name}: expected one '# expect: {label}' marker, got {found}"
    return found[0]


# --- shipped protocols -------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_protocol_loads(path: Path) -> None:
    loaded = load_protocol_file(path)
    assert isinstance(loaded, LoadedProtocol)
    assert loaded.source == str(path)
    assert loaded.source_text == path.read_text(encoding="utf-8")
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.protocol.protocol.id == path.stem


def test_both_protocols_are_shipped() -> None:
    assert {p.name for p in SHIPPED.glob("*.yaml")} >= {MDMA.name, PSILOCYBIN.name}


@pytest.mark.parametrize("path", [MDMA, PSILOCYBIN, MINIMAL], ids=lambda p: p.name)
def test_a_stored_definition_validates_back_to_the_same_protocol(path: Path) -> None:
    protocol = load_protocol_file(path).protocol
    assert Protocol.model_validate(protocol.model_dump(mode="json")) == protocol
    assert Protocol.model_validate(protocol.model_dump()) == protocol
    assert Protocol.model_validate_json(protocol.model_dump_json()) == protocol


def test_mdma_protocol_encodes_the_published_design() -> None:
    protocol = load_protocol_file(MDMA).protocol
    assert protocol.arm_codes() == ["MDMA", "PBO"]
    assert {arm.blinded_label for arm in protocol.arms} == {"Blinded"}
    assert protocol.randomisation is not None
    assert protocol.randomisation.ratio == [1, 1]
    assert protocol.randomisation.block_size == 4
    assert protocol.randomisation.stratify_by == ["site"]

    kinds = [visit.kind for visit in protocol.visits]
    assert kinds.count("preparatory") == 3
    assert kinds.count("experimental") == 3
    assert kinds.count("integration") == 9
    assert all(v.duration_minutes == 90 for v in protocol.visits if v.kind == "preparatory")
    assert all(v.duration_minutes == 480 for v in protocol.visits if v.kind == "experimental")
    assert all(v.duration_minutes == 90 for v in protocol.visits if v.kind == "integration")
    (primary,) = [v for v in protocol.visits if v.primary_outcome]
    assert primary.kind == "outcome"
    assert 119 <= primary.day <= 133  # ~18 weeks after enrolment
    experimental = [v for v in protocol.visits if v.kind == "experimental"]
    gaps = [b.day - a.day for a, b in itertools.pairwise(experimental)]
    assert all(21 <= gap <= 35 for gap in gaps)  # about 4 weeks apart
    # each experimental visit is followed by its 3 integration visits, the first the next day
    for exp in experimental:
        index = protocol.visits.index(exp)
        following = protocol.visits[index + 1 : index + 4]
        assert [v.kind for v in following] == ["integration"] * 3
        assert following[0].day == exp.day + 1

    first, second, third = (protocol.dosing_for_visit(v.code) for v in experimental)
    assert first is not None and second is not None and third is not None
    assert first.initial_mg == [80]
    assert second.initial_mg == third.initial_mg == [120, 80]
    assert (first.max_total_mg, second.max_total_mg, third.max_total_mg) == (120, 180, 180)
    assert first.supplemental_mg(80) == 40
    assert second.supplemental_mg(120) == 60
    assert first.supplemental is not None
    assert first.supplemental.fraction_of_initial == 0.5
    assert (first.supplemental.window_minutes.start, first.supplemental.window_minutes.end) == (
        90,
        150,
    )
    assert protocol.dosing_for_visit("PREP1") is None

    assert protocol.vitals_schedule.baseline.measures == ["SYSBP", "DIABP", "PULSE", "TEMP"]
    assert protocol.vitals_schedule.baseline.within_minutes_before_dose == 60
    assert protocol.alerting.acknowledge_within_minutes == {"critical": 10, "warning": 30}
    assert protocol.alerting.escalation == ["site_clinician", "medical_monitor"]
    assert protocol.alerting.sae_report_within_hours == 24

    assert {rule.kind for rule in protocol.rules} == ALL_KINDS
    assert protocol.rule("hypertension-grade-3").severity == "critical"
    assert protocol.rule("hypoxia-news2-3").severity == "critical"
    assert protocol.rule("low-spo2-news2-2").severity == "warning"
    assert protocol.rule("hypertensive-crisis").severity == "critical"
    (news2,) = protocol.rules_of_kind("composite_score")
    assert isinstance(news2, CompositeScoreRule)
    assert [(level.at_least, level.severity) for level in news2.levels] == [
        (5, "critical"),
        (7, "critical"),
    ]
    (gate,) = protocol.rules_of_kind("dose_gate")
    assert isinstance(gate, DoseGateRule)
    assert gate.max_reading_age_minutes == 30
    assert gate.block_on_open_alert_severity == "critical"
    assert gate.block_if.measures() == ["SYSBP", "DIABP", "PULSE", "TEMP"]
    assert sorted(item for r in protocol.rules_of_kind("cssrs") for item in r.positive_items) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def test_mdma_protocol_says_where_its_numbers_come_from() -> None:
    text = MDMA.read_text(encoding="utf-8")
    for citation in ("CTCAE v5.0", "NEWS2", "Nat Med 2021", "Nat Med 2023", "21 CFR 312.32"):
        assert citation in text
    assert "[VIGIL]" in text  # honest about the numbers that are Vigil defaults


@pytest.mark.parametrize("path", [MDMA, PSILOCYBIN], ids=lambda p: p.stem)
def test_shipped_protocols_give_a_sourced_normal_range_of_every_measure(path: Path) -> None:
    protocol = load_protocol_file(path).protocol
    ranges = {r.measure: r for r in protocol.reference_ranges}
    assert set(ranges) == set(MEASURES)
    assert (ranges["SYSBP"].low, ranges["SYSBP"].high) == (90, 139)
    assert (ranges["TEMP"].low, ranges["TEMP"].high) == (36.1, 37.2)
    assert all(r.source.strip() for r in ranges.values())
    assert "AHA2017" in ranges["SYSBP"].source
    assert protocol.reference_range("OXYSAT") is ranges["OXYSAT"]


@pytest.mark.parametrize(
    ("path", "version", "indication", "snomed_ct", "phase"),
    [
        (MDMA, "1.4", "Posttraumatic stress disorder", "47505003", "PHASE III TRIAL"),
        (PSILOCYBIN, "1.3", "Major depressive disorder", None, "PHASE II TRIAL"),
    ],
    ids=["mdma", "psilocybin"],
)
def test_shipped_protocols_give_the_trial_facts_with_their_sources(
    path: Path, version: str, indication: str, snomed_ct: str | None, phase: str
) -> None:
    protocol = load_protocol_file(path).protocol
    trial = protocol.trial
    assert protocol.protocol.version == version
    assert trial is not None and trial.indication and trial.phase
    assert trial.sponsor and trial.planned_subjects
    assert (trial.indication.text, trial.indication.snomed_ct) == (indication, snomed_ct)
    assert trial.phase.value == phase
    # the sponsor and the size are the study's, not the published trial's: said so
    assert trial.sponsor.source.startswith("[VIGIL]")
    assert trial.planned_subjects.source.startswith("[VIGIL]")
    assert all(
        "[" in fact.source
        for fact in (trial.indication, trial.phase, trial.sponsor, trial.planned_subjects)
    )


def test_a_version_stored_before_the_trial_section_still_reads() -> None:
    stored = load_protocol_file(MDMA).protocol.model_dump(mode="json")
    del stored["trial"]
    assert Protocol.model_validate(stored).trial is None


def test_an_unknown_trial_phase_is_refused_at_its_line() -> None:
    text = MDMA.read_text(encoding="utf-8")
    assert text.count("value: PHASE III TRIAL") == 1
    (issue,) = refuse_text(text.replace("value: PHASE III TRIAL", "value: PHASE 3", 1))
    assert issue.path == "trial.phase.value"
    assert issue.line == text.splitlines().index("    value: PHASE III TRIAL   # CDISC TPHASE") + 1
    assert "unknown trial phase 'PHASE 3'; give a CDISC TPHASE term" in issue.message


def test_psilocybin_protocol_is_a_different_design() -> None:
    protocol = load_protocol_file(PSILOCYBIN).protocol
    assert protocol.protocol.drug.name == "psilocybin"
    (session,) = protocol.dosing.sessions
    assert session.supplemental is None
    assert session.supplemental_mg(25) is None
    assert session.initial_mg == [25]
    assert protocol.rules_of_kind("dose_gate") == []
    assert len(protocol.rules) < len(load_protocol_file(MDMA).protocol.rules)
    (primary,) = [v for v in protocol.visits if v.primary_outcome]
    assert primary.day - protocol.visit("DOSE").day == 42  # week 6 after dosing


# --- the content hash --------------------------------------------------------------------------


def test_sha256_is_stable_and_tracks_the_exact_bytes() -> None:
    text = MDMA.read_text(encoding="utf-8")
    first, again = parse_protocol_text(text), parse_protocol_text(text)
    assert first.sha256 == again.sha256 == load_protocol_file(MDMA).sha256
    assert re.fullmatch(r"[0-9a-f]{64}", first.sha256)

    amended = parse_protocol_text(text + "# amendment 1: no change in substance\n")
    assert amended.sha256 != first.sha256
    assert amended.protocol == first.protocol  # same meaning, different bytes, new version


def test_file_and_text_give_the_same_sha(tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    path.write_bytes(MINIMAL.read_bytes().replace(b"\n", b"\r\n"))
    from_file = load_protocol_file(path)
    assert from_file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert from_file.sha256 == parse_protocol_text(path.read_bytes().decode()).sha256
    assert from_file.sha256 != load_protocol_file(MINIMAL).sha256


# --- broken protocols --------------------------------------------------------------------------

# file -> [(marker label, path, text the message must contain)]
EXPECTED: dict[str, list[tuple[str, str, str]]] = {
    "unknown-measure": [
        (
            "issue",
            "rules[2].when.any[0].measure",
            "unknown measure 'HEARTRATE'; known measures are SYSBP, DIABP, PULSE, RESP, TEMP, "
            "OXYSAT",
        )
    ],
    "unit-mismatch-fahrenheit": [
        ("value", "rules[1].when.any[0].value", "value 100.4 is outside what TEMP can measure"),
        ("unit", "rules[1].when.any[0].unit", "unit mismatch: TEMP rules are written in 'C'"),
    ],
    "empty-any": [
        ("issue", "rules[1].when.any", "empty condition group: an empty 'any' would never fire")
    ],
    "unknown-top-level-key": [("issue", "notes", "unknown key 'notes'")],
    "unknown-nested-key": [("issue", "rules[2].treshold_note", "unknown key 'treshold_note'")],
    "dosing-visit-not-experimental": [
        (
            "issue",
            "dosing.sessions[1].visit",
            "visit 'PREP1' is of kind 'preparatory'; dosing sessions must reference an "
            "experimental visit",
        )
    ],
    "supplemental-window-reversed": [
        (
            "issue",
            "dosing.sessions[0].supplemental.window_minutes",
            "window start (150) must be before its end (90)",
        )
    ],
    "yaml-syntax-error": [
        ("issue", "<document>", "YAML syntax error (column 23): mapping values are not allowed")
    ],
    "duplicate-rule-id": [
        ("issue", "rules[2].id", "duplicate rule id 'high-sbp' (also rules[0].id)")
    ],
    "overdue-not-scheduled": [
        ("issue", "rules[3].measures[2]", "OXYSAT is not in any vitals_schedule interval")
    ],
    "missing-required-field": [("issue", "rules[1].source", "missing required field 'source'")],
    "max-total-too-small": [
        (
            "issue",
            "dosing.sessions[0].max_total_mg",
            "max_total_mg 120 is below the largest course the protocol allows "
            "(100 mg initial + 50 mg supplemental = 150 mg)",
        )
    ],
    "unknown-rule-kind": [
        ("issue", "rules[2].kind", "unknown kind 'treshold'; did you mean 'threshold'?")
    ],
    "duplicate-key": [("issue", "rules[2].severity", "duplicate key 'severity' (first at line")],
    "value-out-of-range": [
        (
            "issue",
            "rules[0].when.any[0].value",
            "value 400 is outside what SYSBP can measure (40..300 mmHg)",
        )
    ],
    "unquoted-version": [
        ("issue", "protocol.version", 'YAML reads 1.0 as a number; quote it ("1.0")')
    ],
    "experimental-visit-without-dosing": [
        ("issue", "visits[2].code", "experimental visit 'EXP2' has no entry in dosing.sessions")
    ],
    "empty-adverse-event-match": [("issue", "rules[5].when", "empty adverse-event match")],
    "several-issues": [
        ("sponsor", "protocol.sponsor", "unknown key 'sponsor'"),
        ("duration", "visits[0].duration_minutes", "greater than 0, got 0"),
        ("unit", "rules[2].when.any[0].unit", "unit mismatch: PULSE rules are written in"),
        ("serious", "rules[5].when.serious", "valid boolean, got 'yes please'"),
    ],
}


def test_every_broken_file_has_an_expectation() -> None:
    assert len(EXPECTED) >= 8
    assert {path.stem for path in BROKEN.glob("*.yaml")} == set(EXPECTED)


def test_the_file_the_broken_ones_derive_from_is_valid() -> None:
    assert load_protocol_file(MINIMAL).protocol.protocol.id == "minimal"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_protocol_is_refused_precisely(name: str) -> None:
    path = BROKEN / f"{name}.yaml"
    issues = refuse(path)
    expected = [
        (path.as_posix(), issue_path, marked_line(path, label), text)
        for label, issue_path, text in EXPECTED[name]
    ]
    assert [(i.source, i.path, i.line) for i in issues] == [e[:3] for e in expected], issues
    for issue, (_, _, _, text) in zip(issues, expected, strict=True):
        assert text in issue.message


def test_several_issues_are_all_in_the_error_text() -> None:
    path = BROKEN / "several-issues.yaml"
    with pytest.raises(ProtocolError) as caught:
        load_protocol_file(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.issues) == 4
    assert lines[0] == (
        f"{path}:{marked_line(path, 'sponsor')}: protocol.sponsor: unknown key 'sponsor' "
        "(unknown keys are errors, never ignored)"
    )


# --- other ways a file can be wrong ------------------------------------------------------------


def minimal_text() -> str:
    return MINIMAL.read_text(encoding="utf-8")


def line_of(text: str, issue: ProtocolIssue) -> str:
    assert issue.line is not None, issue
    return text.splitlines()[issue.line - 1]


def test_missing_file_is_a_protocol_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    issues = refuse(path)
    assert issues == [ProtocolIssue(str(path), "<document>", None, "no such protocol file")]
    with pytest.raises(
        ProtocolError, match=re.escape(f"{path}: <document>: no such protocol file")
    ):
        load_protocol_file(str(path))


def test_a_directory_is_not_a_protocol(tmp_path: Path) -> None:
    (issue,) = refuse(tmp_path)
    assert issue.message.startswith("cannot read protocol file")


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"protocol:\n  title: caf\xe9\n")
    (issue,) = refuse(path)
    assert issue.line == 2
    assert "not UTF-8" in issue.message


def test_empty_text_is_refused() -> None:
    for text in ("", "# only a comment\n", "\n\n"):
        (issue,) = refuse_text(text)
        assert issue.message == "the file is empty"


def test_two_documents_are_refused() -> None:
    (issue,) = refuse_text(minimal_text() + "---\nprotocol: {}\n")
    assert issue.path == "<document>"
    assert "expected a single document" in issue.message


def test_python_tags_are_refused() -> None:
    (issue,) = refuse_text("protocol: !!python/object/apply:os.system ['true']\n")
    assert issue.line == 1
    assert "could not determine a constructor" in issue.message


def test_a_list_is_not_a_protocol() -> None:
    (issue,) = refuse_text("- protocol\n- arms\n")
    assert (issue.path, issue.line) == ("<document>", 1)
    assert "valid dictionary" in issue.message


def test_missing_sections_are_each_reported() -> None:
    issues = refuse_text("protocol:\n  id: x\n")
    paths = {issue.path for issue in issues}
    assert {"arms", "visits", "dosing", "vitals_schedule", "alerting", "rules"} <= paths
    assert "protocol.title" in paths


def test_rule_without_kind_points_at_the_rule() -> None:
    text = minimal_text().replace(
        "  - id: fast-pulse\n    kind: threshold\n", "  - id: fast-pulse\n"
    )
    (issue,) = refuse_text(text)
    assert issue.path == "rules[2].kind"
    assert issue.message == "missing required field 'kind'"
    assert line_of(text, issue) == "  - id: fast-pulse"


def test_typo_suggests_the_field_meant() -> None:
    text = minimal_text().replace("    severity: critical\n", "    severty: critical\n", 1)
    issues = refuse_text(text)
    assert [(i.path, line_of(text, i).strip(), i.message) for i in issues] == [
        ("rules[2].severity", "- id: fast-pulse", "missing required field 'severity'"),
        (
            "rules[2].severty",
            "severty: critical",
            "unknown key 'severty'; did you mean 'severity'? (unknown keys are errors, never "
            "ignored)",
        ),
    ]


def test_yaml_merge_keys_still_work_and_are_located() -> None:
    text = (
        minimal_text()
        .replace("    window: {before: 1, after: 3}\n", "    window: &w {before: 1, after: 3}\n")
        .replace("    window: {before: 3, after: 3}\n", "    window: {<<: *w, after: -1}\n")
    )
    (issue,) = refuse_text(text)
    assert issue.path == "visits[2].window.after"
    assert line_of(text, issue).strip().startswith("window: {<<: *w")


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        (
            '  version: "1"',
            "  version: 1.10",
            "protocol.version",
            'YAML reads 1.10 as a number; quote it ("1.10")',
        ),
        (
            '  version: "1"',
            "  version: 2024-01-01",
            "protocol.version",
            'YAML reads 2024-01-01 as a date; quote it ("2024-01-01")',
        ),
        (
            "  title: Minimal protocol for the loader tests",
            "  title: yes",
            "protocol.title",
            'YAML reads yes as a boolean; quote it ("yes")',
        ),
        (
            "    when: {serious: true}",
            "    when:",
            "rules[5].when",
            "input should be a valid dictionary or instance of AdverseEventMatch, got null",
        ),
        ("\nrules:\n", "\n1: one\nrules:\n", "1", "keys should be strings, got 1"),
    ],
    ids=["version-1.10", "version-date", "title-yes", "when-null", "number-key"],
)
def test_what_yaml_made_of_a_value_is_explained(
    old: str, new: str, path: str, message: str
) -> None:
    text = minimal_text()
    assert text.count(old) == 1
    text = text.replace(old, new)
    (issue,) = refuse_text(text)
    assert issue.path == path
    assert issue.message.endswith(message), issue
    assert line_of(text, issue).strip() == new.strip().splitlines()[0]


def test_issue_and_error_text() -> None:
    with_line = ProtocolIssue("a.yaml", "rules[0].id", 7, "bad")
    without = ProtocolIssue("a.yaml", "<document>", None, "gone")
    assert str(with_line) == "a.yaml:7: rules[0].id: bad"
    assert str(without) == "a.yaml: <document>: gone"
    error = ProtocolError([with_line, without])
    assert str(error) == "a.yaml:7: rules[0].id: bad\na.yaml: <document>: gone"
    assert error.issues == [with_line, without]


# --- the Protocol object -----------------------------------------------------------------------


def test_convenience_methods() -> None:
    protocol = load_protocol_file(MINIMAL).protocol
    assert protocol.visit("EXP1").kind == "experimental"
    with pytest.raises(KeyError):
        protocol.visit("NOPE")
    with pytest.raises(KeyError):
        protocol.rule("nope")
    assert protocol.arm_codes() == ["A", "B"]
    thresholds = protocol.rules_of_kind("threshold")
    assert [rule.id for rule in thresholds] == ["high-sbp", "fever", "fast-pulse"]
    assert all(isinstance(rule, ThresholdRule) for rule in thresholds)
    assert protocol.rules_of_kind("cssrs") == []
    with pytest.raises(ValueError, match="unknown rule kind 'treshold'"):
        protocol.rules_of_kind("treshold")


def test_cross_reference_problems_also_stop_direct_validation() -> None:
    data = load_protocol_file(MINIMAL).protocol.model_dump(mode="json")
    data["rules"][1]["id"] = "high-sbp"
    data["dosing"]["sessions"][0]["visit"] = "PREP1"
    with pytest.raises(ValidationError) as caught:
        Protocol.model_validate(data)
    text = str(caught.value)
    assert "rules[1].id: duplicate rule id 'high-sbp'" in text
    assert "dosing.sessions[0].visit: visit 'PREP1' is of kind 'preparatory'" in text
    assert "visits[1].code: experimental visit 'EXP1' has no entry in dosing.sessions" in text


def test_protocols_are_immutable() -> None:
    protocol = load_protocol_file(MINIMAL).protocol
    with pytest.raises(ValidationError):
        protocol.protocol.version = "2"  # type: ignore[misc]


CROSS_REFERENCE_CASES = [
    pytest.param(
        "  - {code: B, label: Placebo",
        "  - {code: A, label: Placebo",
        "arms[1].code",
        "duplicate arm code 'A' (also arms[0].code)",
        id="duplicate-arm",
    ),
    pytest.param(
        "  - code: OUT\n",
        "  - code: EXP1\n",
        "visits[2].code",
        "duplicate visit code 'EXP1' (also visits[1].code)",
        id="duplicate-visit",
    ),
    pytest.param(
        "randomisation: {ratio: [1, 1], block_size: 4, stratify_by: [site]}",
        "randomisation: null",
        "randomisation",
        "a protocol with several arms needs randomisation",
        id="no-randomisation",
    ),
    pytest.param(
        "ratio: [1, 1], block_size: 4",
        "ratio: [1, 1, 2], block_size: 4",
        "randomisation.ratio",
        "ratio has 3 entries but there are 2 arms",
        id="ratio-per-arm",
    ),
    pytest.param(
        "    day: 42\n",
        "    day: 5\n",
        "visits[2].day",
        "visit OUT (day 5) is listed after EXP1 (day 7); list visits in day order",
        id="visit-order",
    ),
    pytest.param(
        "    primary_outcome: true\n",
        "",
        "visits",
        "no visit is marked primary_outcome: true",
        id="no-primary-outcome",
    ),
    pytest.param(
        "    duration_minutes: 90\n",
        "    duration_minutes: 90\n    primary_outcome: true\n",
        "visits[2].primary_outcome",
        "only one visit may be the primary outcome; PREP1 already is",
        id="two-primary-outcomes",
    ),
    pytest.param(
        "    - visit: EXP1\n",
        "    - visit: EXP9\n",
        "dosing.sessions[0].visit",
        "unknown visit 'EXP9'; visits are PREP1, EXP1, OUT",
        id="unknown-dosing-visit",
    ),
    pytest.param(
        "      max_total_mg: 150\n",
        "      max_total_mg: 150\n    - {visit: EXP1, initial_mg: [50], supplemental: null,"
        " max_total_mg: 50}\n",
        "dosing.sessions[1].visit",
        "visit 'EXP1' already has a dosing entry (sessions[0])",
        id="dosed-twice",
    ),
    pytest.param(
        "{start: 90, end: 150}",
        "{start: 90, end: 500}",
        "dosing.sessions[0].supplemental.window_minutes.end",
        "ends at minute 500, after the whole 480-minute visit EXP1",
        id="window-beyond-visit",
    ),
    pytest.param(
        "    - {measures: [TEMP], from_minute: 0,",
        "    - {measures: [TEMP, PULSE], from_minute: 0,",
        "vitals_schedule.intervals[1].from_minute",
        "overlaps intervals[0] for PULSE",
        id="overlapping-intervals",
    ),
    pytest.param(
        "      supplemental:\n        fraction_of_initial: 0.5\n"
        "        window_minutes: {start: 90, end: 150}\n      max_total_mg: 150\n",
        "      supplemental: null\n      max_total_mg: 100\n",
        "rules[4].dose",
        "a supplemental dose gate, but no dosing session allows a supplemental dose",
        id="gate-without-supplemental",
    ),
    pytest.param(
        "alerting:\n",
        "reference_ranges:\n"
        "  - {measure: PULSE, low: 60, high: 100, unit: beats/min, source: a}\n"
        "  - {measure: PULSE, low: 50, high: 90, unit: beats/min, source: b}\nalerting:\n",
        "reference_ranges[1].measure",
        "duplicate reference range of 'PULSE' (also reference_ranges[0].measure)",
        id="two-ranges-of-one-measure",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "message"), CROSS_REFERENCE_CASES)
def test_cross_reference_problem_is_located(old: str, new: str, path: str, message: str) -> None:
    text = minimal_text()
    assert text.count(old) == 1, old
    issues = refuse_text(text.replace(old, new))
    (issue,) = [issue for issue in issues if issue.path == path]
    assert message in issue.message
    assert issue.line is not None
