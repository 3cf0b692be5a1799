"""A replay as a plain-text table for the terminal (`vigil rules replay`): one row per finding of
either version, marked by where it occurs, then a summary line. Kept apart from the CLI so the
CLI stays parsing and printing, and apart from the service so the service stays about data."""

from datetime import UTC, datetime

from app.replay.schemas import MatchedFinding, Presence, ReplayFinding, ReplayReport

MARKS = {Presence.TARGET_ONLY: "+", Presence.BASELINE_ONLY: "-", Presence.BOTH: "="}
CHANGED_MARK = "*"
HEADER = ("", "time (UTC)", "T+min", "severity", "rule id", "message")


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if at is not None else "-"


def _minutes(finding: ReplayFinding) -> str:
    if finding.minutes_after_dose is None:
        return ""
    return str(round(finding.minutes_after_dose))


def _version(report: ReplayReport, which: str) -> str:
    ref = report.target if which == "target" else report.baseline
    return (
        f"{ref.protocol_id} v{ref.version_label} (sequence {ref.sequence}, "
        f"sha256 {ref.sha256[:12]}, id {ref.id})"
    )


def rows(report: ReplayReport) -> list[tuple[str, ReplayFinding]]:
    """Every finding of the comparison with its mark, in time order."""
    marked: list[tuple[str, ReplayFinding]] = []
    marked += [(MARKS[Presence.TARGET_ONLY], f) for f in report.comparison.only_target]
    marked += [(MARKS[Presence.BASELINE_ONLY], f) for f in report.comparison.only_baseline]
    for matched in report.comparison.both:
        mark = MARKS[Presence.BOTH] + (CHANGED_MARK if matched.changed else "")
        marked.append((mark, matched))
    return sorted(marked, key=lambda row: (row[1].at, row[1].rule_id, row[1].occurrence_key))


def _severity(finding: ReplayFinding) -> str:
    if isinstance(finding, MatchedFinding) and finding.baseline_severity != finding.severity:
        return f"{finding.baseline_severity}->{finding.severity}"
    return finding.severity


def render(report: ReplayReport) -> str:
    lines = [
        f"Replay of dosing session {report.dosing_session_id} (visit {report.visit_code}): "
        f"started {_when(report.started_at)}, ended {_when(report.ended_at)}, "
        f"initial dose {_when(report.initial_dose_at)} UTC",
        f"target:   {_version(report, 'target')}",
        f"own:      {_version(report, 'baseline')}, the version the session ran under",
        f"as of {_when(report.as_of)} UTC"
        + (f"; findings below {report.min_severity} left out" if report.min_severity else ""),
        "",
    ]
    table = [HEADER] + [
        (mark, _when(f.at), _minutes(f), _severity(f), f.rule_id, f.message)
        for mark, f in rows(report)
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER) - 1)]
    right = {2}  # T+min is a number
    for row in table:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row[:-1])
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    if len(table) == 1:
        lines.append("(no findings)")
    summary = report.summary
    lines += [
        "",
        "marks: + only under the target, - only under the session's own version, = under both "
        f"({CHANGED_MARK}: severity or wording changed)",
        f"summary: {summary.target_findings} finding(s) under the target, "
        f"{summary.baseline_findings} under the session's own version; "
        f"{summary.only_target} only under the target, {summary.only_baseline} only under the "
        f"session's own, {summary.both} under both ({summary.changed} changed)",
    ]
    return "\n".join(lines)
