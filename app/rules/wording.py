"""How findings put numbers, times and comparisons into words a clinician reads."""

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from app.clinical.measures import MEASURES
from app.protocols.schema import Condition, ConditionGroup

MEASURE_NAMES = {
    "SYSBP": "systolic BP",
    "DIABP": "diastolic BP",
    "PULSE": "pulse",
    "RESP": "respiratory rate",
    "TEMP": "temperature",
    "OXYSAT": "SpO2",
}
OP_WORDS = {">=": "at or above", ">": "above", "<=": "at or below", "<": "below"}


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def number(code: str, value: float) -> str:
    """A value at the measure's precision, or more when the value has more (38.0, 172, 172.5)."""
    decimals = MEASURES[code].decimals
    text = f"{value:.{decimals}f}"
    return text if float(text) == value else f"{value:g}"


def with_unit(code: str, value: float) -> str:
    unit = MEASURES[code].unit
    return f"{number(code, value)}{unit}" if unit == "%" else f"{number(code, value)} {unit}"


def amount(code: str, value: float) -> str:
    """A change or difference in the measure's unit: '45 mmHg', '1.2 C'."""
    return with_unit(code, round(value, MEASURES[code].decimals + 2))


def mg(value: float) -> str:
    return f"{value:g} mg"


def offset(at: datetime) -> str:
    """'UTC-05:00': the offset from UTC of an aware time (whole minutes)."""
    delta = at.utcoffset() or timedelta(0)
    minutes = round(delta / timedelta(minutes=1))
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def clock(at: datetime, zone: tzinfo = UTC) -> str:
    """'01:20 (UTC-05:00)': the wall clock in ``zone`` (the site's) with its offset on that day."""
    local = at.astimezone(zone)
    return f"{local:%H:%M} ({offset(local)})"


def date_time(at: datetime, zone: tzinfo = UTC) -> str:
    """'2026-03-08 01:20 (UTC-05:00)'."""
    local = at.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} ({offset(local)})"


def relative(minutes: float) -> str:
    whole = round(minutes)
    return f"T+{whole} min" if whole >= 0 else f"T-{-whole} min"


def moment(at: datetime, minutes_after_dose: float | None, zone: tzinfo = UTC) -> str:
    """'10:32 (UTC+01:00, T+92 min)': wall clock, and minutes from the initial dose when there is
    one."""
    if minutes_after_dose is None:
        return clock(at, zone)
    local = at.astimezone(zone)
    return f"{local:%H:%M} ({offset(local)}, {relative(minutes_after_dose)})"


def lateness(measured_at: datetime, received_at: datetime, zone: tzinfo = UTC) -> str:
    """'measured 01:20 (UTC-05:00), received 02:05 (UTC-05:00), 45 min late'."""
    late = (received_at - measured_at) / timedelta(minutes=1)
    return (
        f"measured {clock(measured_at, zone)}, received {clock(received_at, zone)}, "
        f"{duration(late)} late"
    )


def duration(minutes: float) -> str:
    whole = round(minutes)
    if whole < 120:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    return f"{hours} h" if rest == 0 else f"{hours} h {rest} min"


def condition(cond: Condition) -> str:
    """The comparison as the protocol wrote it: 'SYSBP >= 160 mmHg'."""
    return f"{cond.measure} {cond.op} {with_unit(cond.measure, cond.value)}"


def group(cond_group: ConditionGroup) -> str:
    joiner = " or " if cond_group.combinator == "any" else " and "
    return joiner.join(condition(each) for each in cond_group.conditions)


def condition_words(cond: Condition) -> str:
    """'pulse above 110 beats/min'."""
    return (
        f"{MEASURE_NAMES[cond.measure]} {OP_WORDS[cond.op]} {with_unit(cond.measure, cond.value)}"
    )


def group_words(cond_group: ConditionGroup) -> str:
    joiner = " or " if cond_group.combinator == "any" else " and "
    return joiner.join(condition_words(each) for each in cond_group.conditions)


def comparison(cond: Condition, value: float) -> str:
    """'systolic BP 172 mmHg is at or above 160 mmHg'."""
    return (
        f"{MEASURE_NAMES[cond.measure]} {with_unit(cond.measure, value)} is "
        f"{OP_WORDS[cond.op]} {with_unit(cond.measure, cond.value)}"
    )


def and_list(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def duration_beyond(seconds: float, bound_seconds: float, *, hours: bool = True) -> str:
    """A time span in whole seconds, rounded away from ``bound_seconds``, so a span just past a
    bound never reads as the bound itself ('30 min 1 s', not '30 min', past 30 min; '89 min 59 s'
    short of 90 min). Whole minutes read as minutes ('31 min'); from 120 min on, hours too
    unless ``hours`` is False."""
    whole = math.ceil(seconds) if seconds > bound_seconds else math.floor(seconds)
    if seconds == bound_seconds:
        whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    if hours and minutes >= 120:
        whole_hours, minutes = divmod(minutes, 60)
        parts = [f"{whole_hours} h", f"{minutes} min" if minutes else ""]
    else:
        parts = [f"{minutes} min" if minutes or not secs else ""]
    parts.append(f"{secs} s" if secs else "")
    return " ".join(part for part in parts if part)
