"""Blinding: treatment arms (and kit numbers) are seen by the unblinded roles only
(``UNBLINDED_ROLES``: the pharmacist); everybody else gets them masked, everywhere: participant
read shapes and lists, the audit trail and the history of a record, and exports, which reuse
``mask_value``/``mask_values``. A read of an unmasked arm is itself audited
(``read_unblinded``), naming the record and the fields, never the values.

The mask is one fixed word, not the protocol arm's ``blinded_label``: labels that differed by arm
would let a blinded reader group participants by arm. ``None`` (not randomised yet) stays
``None``: a participant's status says as much already.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.audit.recorder import record_event
from app.audit.schemas import AuditRecord
from app.auth.principal import Principal
from app.models import AuditRecord as AuditRow
from app.models import Participant as ParticipantRow
from app.participants.schemas import Participant

MASKED = "BLINDED"
# Fields that reveal a participant's arm wherever they appear: read shapes, the before/after
# values of audit records, exports. `kit_number` is there for the drug kits of a later issue.
BLINDED_FIELDS = frozenset({"arm_code", "kit_number"})
READ_UNBLINDED = "read_unblinded"


def mask_value(field: str, value: Any, *, unblinded: bool) -> Any:
    """``value`` of ``field`` as a reader sees it: masked unless the reader is unblinded."""
    if unblinded or value is None or field not in BLINDED_FIELDS:
        return value
    return MASKED


def mask_values(values: dict[str, Any] | None, *, unblinded: bool) -> dict[str, Any] | None:
    """A copy of a record's values (an audit record's before/after, an export row) with every
    blinded field masked for a blinded reader."""
    if values is None or unblinded:
        return values
    return {key: mask_value(key, value, unblinded=False) for key, value in values.items()}


def revealed_fields(values: dict[str, Any] | None) -> set[str]:
    """The blinded fields holding a value in ``values``: what an unblinded reader gets to see."""
    return {key for key in BLINDED_FIELDS if values and values.get(key) is not None}


def audit_unblinded_read(
    session: Session, entity_type: str, entity_id: str, fields: Iterable[str]
) -> None:
    """Record that the caller (the session's actor) read the unmasked ``fields`` of a record."""
    record_event(session, READ_UNBLINDED, entity_type, entity_id, after={"fields": sorted(fields)})


# --- participants -------------------------------------------------------------------------------


def participant_views(
    session: Session, principal: Principal, rows: Sequence[ParticipantRow]
) -> list[Participant]:
    """The read shape of participants for this caller: arms masked for a blinded one; for an
    unblinded one, every arm shown is audited as a read."""
    views = []
    for row in rows:
        view = Participant.model_validate(row)
        if view.arm_code is not None:
            if principal.unblinded:
                audit_unblinded_read(session, "participants", str(row.id), ["arm_code"])
            else:
                view = view.model_copy(update={"arm_code": MASKED})
        views.append(view)
    return views


def participant_view(session: Session, principal: Principal, row: ParticipantRow) -> Participant:
    return participant_views(session, principal, [row])[0]


# --- the audit trail ----------------------------------------------------------------------------


def audit_record_views(
    session: Session, principal: Principal, rows: Sequence[AuditRow]
) -> list[AuditRecord]:
    """Audit records as this caller reads them: blinded fields of ``before``/``after`` masked
    for a blinded caller; for an unblinded one, each record whose arm it reveals is audited
    (once per record read)."""
    views = []
    revealed: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        view = AuditRecord.model_validate(row)
        if principal.unblinded:
            fields = revealed_fields(row.before) | revealed_fields(row.after)
            if fields:
                revealed.setdefault((row.entity_type, row.entity_id), set()).update(fields)
        else:
            view = view.model_copy(
                update={
                    "before": mask_values(row.before, unblinded=False),
                    "after": mask_values(row.after, unblinded=False),
                }
            )
        views.append(view)
    for (entity_type, entity_id), fields in revealed.items():
        audit_unblinded_read(session, entity_type, entity_id, fields)
    return views
