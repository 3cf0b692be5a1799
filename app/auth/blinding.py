"""Blinding: treatment arms (and kit numbers) are seen by the unblinded roles only
(``UNBLINDED_ROLES``: the pharmacist), and a participant's arm by the clinician who unblinded
that participant in an emergency (``sees_arm``; app/participants/unblinding.py) in that
participant's read shape; everybody else gets them masked, everywhere: participant
read shapes and lists (app/participants/endpoints.py), the audit trail and the history of a
record (app/audit_api/endpoints.py), and exports, which reuse ``mask_value``/``mask_values``. A
read of an unmasked arm is itself audited (``read_unblinded``), naming the record and the fields,
never the values.

The mask is one fixed word, not the protocol arm's ``blinded_label``: labels that differed by arm
would let a blinded reader group participants by arm. ``None`` (not randomised yet) stays
``None``: a participant's status says as much already.
"""

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from app.audit.recorder import record_event
from app.auth.principal import Principal

MASKED = "BLINDED"
# Fields that reveal a participant's arm wherever they appear: read shapes, the before/after
# values of audit records, exports. `kit_number` is there for the drug kits of a later issue.
BLINDED_FIELDS = frozenset({"arm_code", "kit_number"})
READ_UNBLINDED = "read_unblinded"


def sees_arm(principal: Principal, unblinded_by_id: uuid.UUID | None) -> bool:
    """Whether ``principal`` sees the arm of a participant unblinded by ``unblinded_by_id``
    (None: not unblinded): an unblinded role, or the clinician who unblinded them."""
    return principal.unblinded or (
        unblinded_by_id is not None and unblinded_by_id == principal.user_id
    )


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
