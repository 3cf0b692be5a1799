"""The words Vigil's records and rules share, defined once.

This module imports nothing of Vigil's: models, the rules engine, schemas and services all use it.
"""

from enum import StrEnum


class RecordStatus(StrEnum):
    """A clinical record is never deleted: a wrong one is marked entered in error."""

    VALID = "valid"
    ENTERED_IN_ERROR = "entered_in_error"


class Severity(StrEnum):
    """How urgent a finding or an alert is, least urgent first."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_ORDER[self]


# Severity name -> rank (higher is more urgent), in the order the members are defined.
SEVERITY_ORDER: dict[str, int] = {severity.value: rank for rank, severity in enumerate(Severity)}
