"""The study summary drawn on two pages (matplotlib): what ``summary.study_summary`` gathered."""

from datetime import datetime

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from app.exports.reports.chart import PAGE_SIZE, SEVERITY_COLOURS
from app.exports.reports.summary import StudySummary


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} min"


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def summary_figures(summary: StudySummary) -> list[Figure]:
    title = (
        f"{summary.study_code}: {summary.study_name}\nsites {', '.join(summary.sites) or 'none'}"
        f"; as of {_utc(summary.as_of)}"
    )
    first = Figure(figsize=PAGE_SIZE)
    first.suptitle(title, fontsize=10)
    grid = first.add_gridspec(2, 2, left=0.14, right=0.96, top=0.86, bottom=0.06, hspace=0.4)
    enrol = first.add_subplot(grid[0, 0])
    labels = list(summary.enrolment)
    bars = enrol.barh(labels, list(summary.enrolment.values()), color="#546e7a", gid="enrolment")
    enrol.bar_label(bars, fontsize=7, padding=2)
    enrol.xaxis.set_major_locator(MaxNLocator(integer=True))
    enrol.set_title("Participants by status", fontsize=9)
    enrol.invert_yaxis()
    enrol.tick_params(labelsize=7)
    sessions = first.add_subplot(grid[0, 1])
    columns = sessions.bar(
        list(summary.sessions), list(summary.sessions.values()), color="#78909c", gid="sessions"
    )
    sessions.bar_label(columns, fontsize=7, padding=2)
    sessions.yaxis.set_major_locator(MaxNLocator(integer=True))
    sessions.set_title("Dosing sessions by status", fontsize=9)
    sessions.tick_params(labelsize=7)
    alerts = first.add_subplot(grid[1, :])
    alerts.axis("off")
    alerts.set_title(
        "Alerts by severity; time to acknowledge (from raised at that severity)", fontsize=9
    )
    rows = [
        [
            a.severity,
            str(a.count),
            str(a.acknowledged),
            _minutes(a.median_minutes),
            _minutes(a.p90_minutes),
        ]
        for a in summary.alerts
    ]
    table = alerts.table(
        cellText=rows,
        colLabels=["severity", "alerts", "acknowledged", "median", "90th percentile"],
        loc="upper center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.4)
    for index, line in enumerate(summary.alerts, start=1):
        table[index, 0].set_text_props(color=SEVERITY_COLOURS.get(line.severity, "black"))
    second = Figure(figsize=PAGE_SIZE)
    second.suptitle(title, fontsize=10)
    sae = second.add_axes((0.04, 0.04, 0.92, 0.8))
    sae.axis("off")
    sae.set_title("Serious adverse events: reporting to the sponsor", fontsize=9, loc="left")
    sae_rows = [
        [
            s.subject_id,
            s.site_code,
            s.term,
            _utc(s.site_aware_at),
            _utc(s.due_at),
            _utc(s.reported_at),
            s.clock,
        ]
        for s in summary.saes[:30]
    ] or [["none", "", "", "", "", "", ""]]
    if len(summary.saes) > 30:
        sae_rows.append([f"... and {len(summary.saes) - 30} more", "", "", "", "", "", ""])
    sae_table = sae.table(
        cellText=sae_rows,
        colLabels=["subject", "site", "term", "site aware", "report due", "reported", "clock"],
        colWidths=[0.08, 0.05, 0.33, 0.15, 0.15, 0.15, 0.09],
        loc="upper left",
        cellLoc="left",
    )
    sae_table.auto_set_font_size(False)
    sae_table.set_fontsize(7)
    sae_table.scale(1, 1.3)
    return [first, second]
