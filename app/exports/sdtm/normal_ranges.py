"""The VS normal-range variables from a protocol's reference range (docs/protocol-format.md):
the limits in the original unit (VSORNRLO/VSORNRHI), in the standard unit (VSSTNRLO/VSSTNRHI),
and where the standard result falls (VSNRIND). Pure: no database.

Both limits are normal: a result equal to one is NORMAL, below ``low`` LOW, above ``high`` HIGH.
A test without a range in its protocol version gets empty range variables."""

from dataclasses import dataclass
from functools import lru_cache

from app.protocols.schema import ReferenceRange

_FAHRENHEIT = "F"


@dataclass(frozen=True)
class RangeValues:
    original_low: str  # VSORNRLO: character, in the unit of VSORRESU
    original_high: str
    low: float | None  # VSSTNRLO: numeric, in the standard unit
    high: float | None
    indicator: str  # VSNRIND


NO_RANGE = RangeValues("", "", None, None, "")


def indicator(value: float, low: float, high: float) -> str:
    if value < low:
        return "LOW"
    if value > high:
        return "HIGH"
    return "NORMAL"


def _text(value: float) -> str:
    """The shortest text that reads back as the same number ("90", "36.1")."""
    return str(int(value)) if value.is_integer() else repr(value)


def _in_original(limit: float, original_unit: str) -> str:
    """A limit in the original unit: only temperature is ever reported in another unit (F)."""
    if original_unit == _FAHRENHEIT:
        return _text(round(limit * 9 / 5 + 32, 1))
    return _text(limit)


@lru_cache(maxsize=256)
def _limits(low: float, high: float, original_unit: str) -> tuple[str, str]:
    return _in_original(low, original_unit), _in_original(high, original_unit)  # once per test


def range_values(reference: ReferenceRange | None, value: float, original_unit: str) -> RangeValues:
    """The range variables of one VS row: ``value`` in the standard unit, ``original_unit`` the
    row's VSORRESU."""
    if reference is None:
        return NO_RANGE
    low, high = reference.low, reference.high
    original_low, original_high = _limits(low, high, original_unit)
    return RangeValues(original_low, original_high, low, high, indicator(value, low, high))
