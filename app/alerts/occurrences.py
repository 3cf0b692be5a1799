"""An alert's occurrences as a client reads them: each one's time, severity, values, thresholds,
evidence, and whether it was withdrawn and why, oldest first (found_at, then its id), in pages."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts.schemas import AlertRead
from app.models import Alert, AlertOccurrence
from app.pagination import PageParams, paginate
from app.protocols import service as protocols
from app.rules.measures import rule_measures

# the occurrences GET /alerts/{id} shows; the rest are read from /alerts/{id}/occurrences
FIRST_PAGE = 50


def shown(occurrence: AlertOccurrence) -> dict[str, Any]:
    finding = occurrence.finding or {}
    return {
        "occurrence_id": occurrence.occurrence_hash,
        "found_at": occurrence.found_at,
        "severity": finding.get("severity"),
        "message": finding.get("message"),
        "observed": finding.get("observed"),
        "thresholds": finding.get("thresholds"),
        "evidence": finding.get("evidence"),
        "variant": finding.get("variant"),
        "late": finding.get("late"),
        "withdrawn": occurrence.withdrawn_at is not None,
        "withdrawn_at": occurrence.withdrawn_at,
        "withdrawn_reason": occurrence.withdrawn_reason,
    }


def page_of(session: Session, alert: Alert, params: PageParams) -> dict[str, Any]:
    """A page of the alert's occurrences, oldest first, and the cursor of the next."""
    stmt = select(AlertOccurrence).where(AlertOccurrence.alert_id == alert.id)
    rows, cursor = paginate(
        session,
        stmt,
        AlertOccurrence.occurrence_hash,
        params,
        order_by=[AlertOccurrence.found_at],
    )
    return {"items": [shown(row) for row in rows], "next_cursor": cursor}


def measures_of(session: Session, alert: Alert) -> list[str]:
    """The SDTM codes the alert's rule reads, per its protocol version (none for a rule about
    records, or one the version does not hold)."""
    protocol = protocols.definition_of(session, alert.protocol_version_id)
    try:
        rule = protocol.rule(alert.rule_id)
    except KeyError:
        return []
    return rule_measures(rule)


def detail(session: Session, alert: Alert) -> dict[str, Any]:
    """The alert with its measures and the first page of its occurrences."""
    first = page_of(session, alert, PageParams(limit=FIRST_PAGE, cursor=None))
    return {
        **AlertRead.model_validate(alert).model_dump(),
        "measures": measures_of(session, alert),
        "occurrence_page": first,
    }
