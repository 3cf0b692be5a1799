"""The words Vigil's records and rules share, defined once.

This module imports nothing of Vigil's: models, the rules engine, schemas and services all use it.
"""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class RecordStatus(StrEnum):
    """A clinical record is never deleted: a wrong one is marked entered in error."""

    VALID = "valid"
    ENTERED_IN_ERROR = "entered_in_error"


# How urgent a finding or an alert is: the severities a protocol rule may name, by rank (a
# higher rank is more urgent). Alerts keep a finding's severity; replay filters by it.
SEVERITY_ORDER: Mapping[str, int] = MappingProxyType({"info": 0, "warning": 1, "critical": 2})
