"""The second page of a session report: the session's facts, its attestations (therapist
presence, return to baseline), its signatures (who, when, meaning) and its alerts, as tables.
Times are the site's clock time. Free text (attestation notes, acknowledgement notes,
resolutions) is left out: a report goes to readers who may not see notes."""

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from app.exports.reports.chart import PAGE_SIZE
from app.exports.reports.session_data import SessionReport

MAX_ROWS = 18  # rows per table; more are counted in a last row


def _table(ax: Axes, title: str, header: list[str] | None, rows: list[list[str]]) -> None:
    width = len(header) if header else len(rows[0])
    ax.axis("off")
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    shown = rows[:MAX_ROWS] or [["none"] + [""] * (width - 1)]
    if len(rows) > MAX_ROWS:
        shown.append([f"... and {len(rows) - MAX_ROWS} more"] + [""] * (width - 1))
    table = ax.table(cellText=shown, colLabels=header, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.2)
    for (row, _column), cell in table.get_celld().items():
        if row == 0 and header:
            cell.set_facecolor("#eceff1")


def listing_rows(report: SessionReport) -> dict[str, list[list[str]]]:
    """The tables' rows, as printed."""
    local = report.local
    readings = f"{report.readings} ({report.readings_entered_in_error} entered in error, left out)"
    facts = [
        ["status", report.status],
        ["started", local(report.started_at)],
        ["ended", local(report.ended_at)],
        ["vital readings", readings],
        ["adverse events in the session", str(report.adverse_events)],
        ["doses", ", ".join(f"{d.kind} {d.amount_mg:g} mg at {local(d.at)}" for d in report.doses)],
    ]
    return {
        "facts": facts,
        "attestations": [
            [a.what, a.who, local(a.at) or "not attested"] for a in report.attestations
        ],
        "signatures": [
            [s.record, s.printed_name, s.meaning, local(s.signed_at), s.status]
            for s in report.signatures
        ],
        "alerts": [
            [
                a.rule_id,
                a.severity,
                a.status,
                local(a.raised_at),
                " ".join(filter(None, [local(a.acknowledged_at), a.acknowledged_by])),
                " ".join(filter(None, [local(a.resolved_at), a.resolved_by])),
            ]
            for a in report.alerts
        ],
    }


def listing_figure(report: SessionReport) -> Figure:
    rows = listing_rows(report)
    figure = Figure(figsize=PAGE_SIZE)
    sizes = [min(len(rows[key]), MAX_ROWS) + 2 for key in rows]
    facts_ax, attest_ax, sign_ax, alert_ax = figure.subplots(
        4,
        1,
        gridspec_kw={
            "height_ratios": sizes,
            "left": 0.04,
            "right": 0.96,
            "top": 0.92,
            "bottom": 0.02,
            "hspace": 0.45,
        },
    )
    _table(facts_ax, "Session", None, rows["facts"])
    _table(attest_ax, "Attestations", ["attestation", "by", "at (site time)"], rows["attestations"])
    _table(
        sign_ax,
        "Signatures",
        ["record", "signed by", "meaning", "at (site time)", "status"],
        rows["signatures"],
    )
    _table(
        alert_ax,
        "Alerts",
        ["rule", "severity", "status", "raised", "acknowledged", "resolved"],
        rows["alerts"],
    )
    figure.suptitle(
        f"{report.study_code}   subject {report.subject_id}   {report.visit}   "
        f"site {report.site_code} ({report.timezone})",
        fontsize=9,
    )
    return figure
