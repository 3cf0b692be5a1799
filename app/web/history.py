"""The history of one record: every change the audit trail holds of it (who, when, which field,
old value, new value, why) and its e-signatures, read by the rules of GET
/api/v1/history/{entity_type}/{entity_id}: the record is checked like a read of the record
itself (another site's is a 404) and blinded fields stay masked for a blinded reader."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.audit.schemas import AuditRecordRead
from app.audit.signed_records import SIGNABLE, Signable
from app.audit_api.endpoints import history_page
from app.auth.deps import Authorize, ScopedHistory
from app.auth.scope import site_of_record
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import AdverseEvent, DosingSession, Participant, Site, TherapistNote, Visit
from app.pagination import PageDep
from app.permissions import Permission
from app.signatures import service as signatures
from app.signatures.schemas import SignatureRead
from app.web.templating import render
from app.web.viewer import CurrentViewer, Viewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

SIGNED = {model.__tablename__: model for model in SIGNABLE}  # the tables e-signatures sign
# Records that belong to a participant, by the column naming them.
OF_PARTICIPANT: dict[str, Any] = {
    "visits": Visit,
    "adverse_events": AdverseEvent,
    "therapist_notes": TherapistNote,
    "dosing_sessions": DosingSession,
}


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Change:
    """One audit record as the page shows it."""

    id: uuid.UUID
    occurred_at: datetime
    who: str
    action: str
    reason: str | None
    fields: list[FieldChange]

    @classmethod
    def of(cls, record: AuditRecordRead) -> "Change":
        before, after = record.before or {}, record.after or {}
        names = sorted(set(before) | set(after))
        return cls(
            id=record.id,
            occurred_at=record.occurred_at,
            who=who(record.actor),
            action=record.action.replace("_", " "),
            reason=record.reason,
            fields=[
                FieldChange(name, shown(before.get(name)), shown(after.get(name))) for name in names
            ],
        )


def who(actor: str) -> str:
    """'coordinator:casey' as 'casey (coordinator)'; 'system' as it is."""
    role, _, name = actor.partition(":")
    return f"{name} ({role.replace('_', ' ')})" if name else actor


def shown(value: Any) -> str:
    """A recorded value as text: nothing as '-', lists joined, objects as JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(shown(item) for item in value) or "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True)
class Subject:
    """What the history is of, in words, and the participant it belongs to (if any)."""

    title: str
    participant: Participant | None


def _subject(session: Session, entity_type: str, entity_id: uuid.UUID) -> Subject:
    what = {"studies": "study", "therapist_notes": "note"}.get(
        entity_type, entity_type.removesuffix("s").replace("_", " ")
    )
    if entity_type == "participants":
        participant = session.get(Participant, entity_id)
        if participant is not None:
            return Subject(f"participant {participant.subject_id}", participant)
    model = OF_PARTICIPANT.get(entity_type)
    if model is not None and (record := session.get(model, entity_id)) is not None:
        participant = session.get(Participant, record.participant_id)
        if participant is not None:
            if isinstance(record, Visit):
                what = f"visit {record.code}"
            return Subject(f"{what} of participant {participant.subject_id}", participant)
    return Subject(f"{what} {entity_id}", None)


def _signatures(session: Session, entity_type: str, entity_id: uuid.UUID) -> list[SignatureRead]:
    model = SIGNED.get(entity_type)
    if model is None:
        return []
    record = cast(Signable | None, session.get(model, entity_id))
    if record is None:
        return []
    return signatures.signatures_of(session, [record]).get(record.id, [])


def _zone(session: Session, entity_type: str, entity_id: uuid.UUID) -> str:
    """The clock the page shows times in: the record's site's, else UTC."""
    site_id = site_of_record(session, entity_type, entity_id)
    site = session.get(Site, site_id) if site_id is not None else None
    return site.timezone if site is not None else "UTC"


@router.get(
    "/history/{entity_type}/{entity_id}",
    dependencies=[Depends(Authorize(Permission.HISTORY_READ))],
)
def history(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    record: ScopedHistory,
    page: PageDep,
) -> HTMLResponse:
    entity_type, entity_id = record
    items, cursor = history_page(session, viewer.principal, record, page)
    subject = _subject(session, entity_type, entity_id)
    more = None
    if cursor is not None:
        more = f"/history/{entity_type}/{entity_id}?" + urlencode({"cursor": cursor})
    return render(
        request,
        "history.html",
        viewer=viewer,
        nav="participants" if subject.participant is not None else "",
        subject=subject,
        back=_back(viewer, subject),
        zone=_zone(session, entity_type, entity_id),
        changes=[Change.of(item) for item in items],
        signatures=_signatures(session, entity_type, entity_id),
        more=more,
        first_page=page.cursor is None,
    )


def _back(viewer: Viewer, subject: Subject) -> str | None:
    if subject.participant is None or not viewer.may(Permission.PARTICIPANT_READ):
        return None
    return f"/participants/{subject.participant.id}"
