"""The chart page of a session report: the vitals over the session against the protocol's
limits, the doses as vertical lines, and the alerts with their acknowledgement and resolution
on the same time axis (minutes since the initial dose below, the site's clock time above).

Drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot, no global state, no display).
Every plotted artist carries a ``gid`` naming what it shows (``vitals:SYSBP``,
``dose:initial``, ``alert:<rule>:raised``, ``limit:SYSBP:<rule>``) so tests read the figure
back."""

from datetime import timedelta

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from app.exports.reports.session_data import SessionReport

# A4 landscape; the PNG is this size at PNG_DPI.
PAGE_SIZE = (11.69, 8.27)
PNG_DPI = 100
SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#607d8b"}
DOSE_COLOURS = {"initial": "#1b5e20", "supplemental": "#2e7d32"}
SERIES_COLOURS = {
    "SYSBP": "#1565c0",
    "DIABP": "#6a1b9a",
    "PULSE": "#ad1457",
    "TEMP": "#e65100",
    "OXYSAT": "#00838f",
}
SHORT_NAMES = {"SYSBP": "systolic", "DIABP": "diastolic"}
# The panels: which measures share one.
PANELS = (("SYSBP", "DIABP"), ("PULSE",), ("TEMP",), ("OXYSAT",))
PANEL_LABELS = ("Blood pressure\n(mmHg)", "Pulse\n(beats/min)", "Temperature\n(C)", "SpO2\n(%)")


def _limits(ax: Axes, report: SessionReport, codes: tuple[str, ...]) -> None:
    for code in codes:
        for limit in report.limits.get(code, []):
            colour = SEVERITY_COLOURS[limit.severity]
            ax.axhline(
                limit.value,
                color=colour,
                linestyle="--",
                linewidth=0.9,
                alpha=0.8,
                gid=f"limit:{code}:{limit.rule_id}",
            )
            ax.annotate(
                f"{code} {limit.op} {limit.value:g}",
                xy=(1.0, limit.value),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=6,
                color=colour,
                va="center",
            )


def _doses(axes: list[Axes], report: SessionReport) -> None:
    for dose in report.doses:
        for ax in axes:
            ax.axvline(
                dose.minute,
                color=DOSE_COLOURS.get(dose.kind, "#2e7d32"),
                linewidth=1.6 if dose.kind == "initial" else 1.2,
                linestyle="-" if dose.kind == "initial" else "-.",
                gid=f"dose:{dose.kind}",
            )
        axes[-1].annotate(
            f"{dose.kind} {dose.amount_mg:g} mg",
            xy=(dose.minute, 0.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=7,
            color=DOSE_COLOURS.get(dose.kind, "#2e7d32"),
        )


def alert_rows(report: SessionReport) -> list[str]:
    """The strip's rows: one per rule, in the order its first alert was raised (a rule alerts
    again only after its alert was resolved, so one row's spans never overlap)."""
    return list(dict.fromkeys(alert.rule_id for alert in report.alerts))


def _alerts(ax: Axes, report: SessionReport, end_minute: float) -> None:
    ax.set_title(
        "Alerts: ^ raised, o acknowledged, s resolved (the line: until resolved)",
        loc="left",
        fontsize=8,
    )
    if not report.alerts:
        ax.text(0.5, 0.5, "no alerts", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks([])
        return
    rules = alert_rows(report)
    for alert in report.alerts:
        row = rules.index(alert.rule_id)
        colour = SEVERITY_COLOURS.get(alert.severity, "#607d8b")
        until = alert.resolved_minute if alert.resolved_minute is not None else end_minute
        ax.plot([alert.minute, until], [row, row], color=colour, linewidth=1, alpha=0.5)
        ax.plot(
            [alert.minute],
            [row],
            "^",
            color=colour,
            markersize=8,
            gid=f"alert:{alert.rule_id}:raised",
        )
        if alert.acknowledged_minute is not None:
            ax.plot(
                [alert.acknowledged_minute],
                [row],
                "o",
                color=colour,
                markerfacecolor="white",
                markersize=7,
                gid=f"alert:{alert.rule_id}:acknowledged",
            )
        if alert.resolved_minute is not None:
            ax.plot(
                [alert.resolved_minute],
                [row],
                "s",
                color=colour,
                markersize=6,
                gid=f"alert:{alert.rule_id}:resolved",
            )
    ax.set_yticks(range(len(rules)), rules, fontsize=7)
    ax.set_ylim(-0.7, len(rules) - 0.3)
    ax.invert_yaxis()


def end_minute(report: SessionReport) -> float:
    """Where the x axis ends: the session's end, else its last plotted moment."""
    moments = [m for s in report.series.values() for m in s.minutes]
    moments += [d.minute for d in report.doses] + [a.minute for a in report.alerts]
    if report.ended_at is not None:
        moments.append(report.minute(report.ended_at))
    return max(moments, default=60.0)


def chart_figure(report: SessionReport) -> Figure:
    # Fixed margins, not a layout engine: a layout engine takes most of the drawing time.
    figure = Figure(figsize=PAGE_SIZE)
    rows = len(PANELS) + 1
    strip = 1 + 0.25 * min(len(alert_rows(report)), 12)
    grid = figure.add_gridspec(
        rows,
        1,
        height_ratios=[3, 2, 2, 2, strip],
        left=0.13,
        right=0.9,
        top=0.88,
        bottom=0.07,
        hspace=0.22,
    )
    first = figure.add_subplot(grid[0])
    axes = [first] + [figure.add_subplot(grid[i], sharex=first) for i in range(1, rows)]
    panels, alert_axis = axes[:-1], axes[-1]
    for ax, codes, label in zip(panels, PANELS, PANEL_LABELS, strict=True):
        for code in codes:
            series = report.series[code]
            ax.plot(
                series.minutes,
                series.values,
                marker="o",
                markersize=3,
                linewidth=1.2,
                color=SERIES_COLOURS[code],
                label=series.name,
                gid=f"vitals:{code}",
            )
            if len(codes) > 1 and series.minutes:  # name the line at its last point
                ax.annotate(
                    SHORT_NAMES[code],
                    xy=(series.minutes[-1], series.values[-1]),
                    xytext=(4, 0),
                    textcoords="offset points",
                    fontsize=7,
                    color=SERIES_COLOURS[code],
                    va="center",
                )
        _limits(ax, report, codes)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelbottom=False, labelsize=7)
    end = end_minute(report)
    start = min([0.0, *(m for s in report.series.values() for m in s.minutes[:1])])
    first.set_xlim(start - 10, end + 10)
    first.xaxis.set_major_locator(MultipleLocator(60))  # hours after minute 0
    _doses(axes, report)
    _alerts(alert_axis, report, end)
    alert_axis.tick_params(labelsize=7)
    alert_axis.set_xlabel(f"minutes since the {report.origin_label}", fontsize=8)
    clock = first.secondary_xaxis("top")
    zone = report.zone

    def local_time(minute: float, _position: float) -> str:
        return (report.origin + timedelta(minutes=minute)).astimezone(zone).strftime("%H:%M")

    clock.xaxis.set_major_formatter(FuncFormatter(local_time))
    clock.tick_params(labelsize=7)
    clock.set_xlabel(f"clock time at the site ({report.timezone})", fontsize=8)
    figure.suptitle(
        f"{report.study_code}   subject {report.subject_id}   {report.visit}   site "
        f"{report.site_code}   {report.local(report.started_at)}\n"
        f"{report.protocol}; dashed: the protocol's threshold and sustained alert limits "
        "(red critical, orange warning); green: doses",
        fontsize=9,
    )
    return figure
