"""What the live page of a dosing session shows, read through the services the API answers with:
the session's read shape (app/dosing/views.py), its snapshot (app/sessions/snapshot.py), the
supplemental dose gate (app/dosing/dose_gate.py), its alerts (app/alerts/service.py narrowed by
app/auth/scope.py) and the protocol's limits (app/exports/reports/limits.py)."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts import service as alerts
from app.auth.blinding import audit_unblinded_read
from app.auth.scope import only_visible_alerts
from app.clinical.measures import MEASURES
from app.dosing import dose_gate, views
from app.dosing.schemas import DosingSessionRead
from app.errors import VigilError
from app.exports.reports.limits import protocol_limits
from app.exports.reports.session_data import PLOTTED
from app.models import Alert, DosingSession, Participant, Site, User, Visit, user_sites
from app.models.alert import AlertStatus
from app.permissions import Role
from app.protocols import service as protocols
from app.rules import GateDecision
from app.sessions.snapshot import snapshot_of
from app.vocabulary import SEVERITY_ORDER, RecordStatus
from app.web.session.schedule import ScheduleState, schedule_state
from app.web.viewer import Viewer

VALID = RecordStatus.VALID.value
MEASURE_NAMES = {code: measure.name for code, measure in MEASURES.items()}


@dataclass(frozen=True)
class SessionHead:
    """The session with its participant, site and visit, as every panel names them."""

    dosing_session: DosingSession
    participant: Participant
    site: Site
    visit: Visit

    @property
    def zone(self) -> str:
        return self.site.timezone


def head_of(session: Session, dosing_session: DosingSession) -> SessionHead:
    participant = session.get_one(Participant, dosing_session.participant_id)
    return SessionHead(
        dosing_session,
        participant,
        session.get_one(Site, participant.site_id),
        session.get_one(Visit, dosing_session.visit_id),
    )


def open_alerts(session: Session, viewer: Viewer, dosing_session: DosingSession) -> list[Alert]:
    """The session's alerts not yet resolved that the caller sees (as GET /alerts lists them),
    most severe first, then oldest first."""
    stmt = alerts.listing(dosing_session_id=dosing_session.id).where(
        Alert.status != AlertStatus.RESOLVED.value
    )
    found = list(session.scalars(only_visible_alerts(stmt, viewer.principal)))
    return sorted(found, key=lambda a: (-SEVERITY_ORDER[a.severity], a.first_found_at, a.id))


def supplemental_gate(
    session: Session, dosing_session: DosingSession, now: datetime
) -> GateDecision | None:
    """The gate now, as GET .../supplemental-dose-gate answers it (None before the start)."""
    if dosing_session.started_at is None:
        return None
    try:
        return dose_gate.judge_supplemental(session, dosing_session, now, None, field="as_of")
    except VigilError:  # a clock behind the session's start: nothing to judge yet
        return None


def schedule_of(
    session: Session, dosing_session: DosingSession, read: DosingSessionRead, now: datetime
) -> ScheduleState:
    protocol = protocols.definition_of(session, dosing_session.protocol_version_id)
    snapshot = snapshot_of(session, dosing_session, now)
    initial = snapshot.initial_dose()
    return schedule_state(
        protocol,
        initial.administered_at if initial else None,
        snapshot.readings,
        now,
        in_progress=read.status.value == "in_progress",
    )


def initial_dose_at(read: DosingSessionRead) -> datetime | None:
    for dose in read.doses:
        if dose.kind.value == "initial" and dose.record_status.value == VALID:
            return dose.administered_at
    return None


def shown_arm(session: Session, viewer: Viewer, participant: Participant) -> str | None:
    """The participant's arm, for the clinician who unblinded them in an emergency only (the
    API shows it to them too; every other reader of this page sees no arm, not even masked).
    Showing it is audited as the API audits it."""
    principal = viewer.principal
    if (
        participant.arm_code is None
        or principal.role is not Role.CLINICIAN
        or participant.unblinded_by_id != principal.user_id
    ):
        return None
    audit_unblinded_read(session, "participants", str(participant.id), ["arm_code"])
    return participant.arm_code


def names_of(session: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {row.id: row.display_name for row in rows}


def site_therapists(session: Session, site_id: uuid.UUID) -> list[User]:
    """The active therapists of the site: whom a clinician may attest present."""
    stmt = (
        select(User)
        .join(user_sites, user_sites.c.user_id == User.id)
        .where(
            user_sites.c.site_id == site_id,
            User.role == Role.THERAPIST.value,
            User.active.is_(True),
        )
        .order_by(User.display_name)
    )
    return list(session.scalars(stmt))


def chart_config(
    session: Session, head: SessionHead, read: DosingSessionRead, now: datetime
) -> str:
    """What static/js/session.js draws, as JSON for a data attribute: the measures plotted, the
    protocol's limits of each, the valid doses, minute 0 (the initial dose, else the start) and
    where the readings come from (the API's list, which the page polls)."""
    protocol = protocols.definition_of(session, read.protocol_version_id)
    limits = protocol_limits(protocol)
    origin = initial_dose_at(read) or read.started_at or now
    config: dict[str, Any] = {
        "session_id": str(read.id),
        "readings_url": f"/api/v1/dosing-sessions/{read.id}/vital-readings",
        "origin": origin.isoformat(),
        "origin_label": "initial dose" if initial_dose_at(read) else "session start",
        "timezone": head.zone,
        "measures": [
            {
                "code": code,
                "name": MEASURES[code].name,
                "unit": MEASURES[code].unit,
                "field": MEASURES[code].column,
                "limits": [
                    {
                        "op": limit.op,
                        "value": limit.value,
                        "severity": limit.severity,
                        "label": limit.label,
                    }
                    for limit in limits.get(code, [])
                ],
            }
            for code in PLOTTED
        ],
        "doses": [
            {
                "kind": dose.kind.value,
                "amount_mg": dose.amount_mg,
                "at": dose.administered_at.isoformat(),
            }
            for dose in read.doses
            if dose.record_status.value == VALID
        ],
    }
    return json.dumps(config, separators=(",", ":"))


def page_context(
    session: Session, viewer: Viewer, dosing_session: DosingSession, now: datetime
) -> dict[str, Any]:
    """Everything session.html renders."""
    head = head_of(session, dosing_session)
    read = views.present(session, dosing_session)
    ds = dosing_session
    people = names_of(
        session,
        {ds.lead_therapist_id, ds.co_therapist_id, ds.baseline_attested_by_id},
    )
    protocol = protocols.definition_of(session, ds.protocol_version_id)
    definition = protocol.dosing_for_visit(head.visit.code)
    return {
        "head": head,
        "ds": read,
        "row": ds,
        "now": now,
        "initial_dose_at": initial_dose_at(read),
        "arm": shown_arm(session, viewer, head.participant),
        "alerts": open_alerts(session, viewer, ds),
        "schedule": schedule_of(session, ds, read, now),
        "gate": supplemental_gate(session, ds, now),
        "people": people,
        "therapists": site_therapists(session, head.site.id),
        "chart": chart_config(session, head, read, now),
        "definition": definition,
        "measure_names": MEASURE_NAMES,
    }
