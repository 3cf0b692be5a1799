"""The rules engine: pure functions from a protocol and a session snapshot to findings.

No database, no web framework, no I/O: the alerts service builds a :class:`SessionSnapshot`,
calls :func:`evaluate` (or :func:`evaluate_dose_gate` before a supplemental dose) and persists
what it needs. ``docs/rules-engine.md`` describes every rule kind's semantics.
"""

from app.rules.dose_gate import GateCheck, GateDecision, GateReason, evaluate_dose_gate
from app.rules.engine import evaluate, evaluate_rule, replay
from app.rules.findings import DedupKey, Finding
from app.rules.news2 import News2Score, band_score, news2
from app.rules.overdue import met_window, overdue_between, overdue_moments
from app.rules.snapshot import (
    AdverseEvent,
    CssrsScreen,
    Dose,
    OpenAlert,
    Reading,
    SessionSnapshot,
)

__all__ = [
    "AdverseEvent",
    "CssrsScreen",
    "DedupKey",
    "Dose",
    "Finding",
    "GateCheck",
    "GateDecision",
    "GateReason",
    "News2Score",
    "OpenAlert",
    "Reading",
    "SessionSnapshot",
    "band_score",
    "evaluate",
    "evaluate_dose_gate",
    "evaluate_rule",
    "met_window",
    "news2",
    "overdue_between",
    "overdue_moments",
    "replay",
]
