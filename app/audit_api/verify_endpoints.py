"""`GET /audit-records/verify`: the verdict of a walk over the audit hash chain, as JSON."""

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import select

from app.audit.verify import Damage, Head, verify_chain
from app.auth.deps import Authorize
from app.checked_input import CheckedRoute
from app.config import get_settings
from app.db import SessionDep
from app.errors import InvalidInput
from app.models import AuditRecord
from app.permissions import Permission
from app.schemas import ReadModel

router = APIRouter(tags=["audit"], route_class=CheckedRoute)


class ChainHead(ReadModel):
    """A head as the API shows it: the record's hash is never shown, only a digest keyed by the
    server secret. A raw hash would let a blinded reader test "which arm makes this hash?"
    against a randomisation record; the keyed digest cannot be tested without the secret."""

    sequence: int
    digest: str

    @classmethod
    def of(cls, head: Head) -> "ChainHead":
        return cls(sequence=head.sequence, digest=head_digest(head))


def head_digest(head: Head) -> str:
    key = get_settings().secret_key.encode()
    message = f"audit-head:{head.sequence}:{head.record_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class ChainBreak(ReadModel):
    sequence: int
    record_id: str | None = Field(description="None for a record removed from the end")
    action: str | None
    entity_type: str | None
    entity_id: str | None
    damage: Damage
    detail: str
    message: str


class ChainVerification(ReadModel):
    intact: bool
    records_checked: int
    head: ChainHead = Field(description="The newest record that verified")
    expected_head: ChainHead | None
    broken: ChainBreak | None = Field(description="The first broken record, if any")


@router.get(
    "/audit-records/verify",
    response_model=ChainVerification,
    dependencies=[Depends(Authorize(Permission.AUDIT_READ))],
)
def verify_audit_trail(
    session: SessionDep,
    expect_head: Annotated[
        str | None,
        Query(
            description="SEQ:DIGEST of a head noted earlier (head.sequence:head.digest): the "
            "chain must still contain that record, unchanged (catches a removed or rewritten end)",
        ),
    ] = None,
) -> ChainVerification:
    """Walk the whole hash chain and name the first broken record; read-only.

    Answers 200 either way: ``intact`` says whether the chain holds, ``broken`` what is wrong
    and where, ``head`` the newest record that verified (note it to pass as ``expect_head``).
    """
    try:
        expected = _expected_head(session, expect_head) if expect_head else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    result = verify_chain(session, expected)
    return ChainVerification(
        intact=result.intact,
        records_checked=result.records_checked,
        head=ChainHead.of(result.head),
        expected_head=ChainHead.of(result.expected_head) if result.expected_head else None,
        broken=ChainBreak.model_validate(result.broken) if result.broken else None,
    )


def _expected_head(session: SessionDep, text: str) -> Head:
    """The head the caller noted, as SEQ:DIGEST: the record at SEQ today if its digest still
    matches, else a head that cannot match (so the walk reports the end as changed)."""
    parsed = Head.parse(text)  # same shape: a sequence and 64 hex characters
    stored = session.scalar(
        select(AuditRecord.record_hash).where(AuditRecord.sequence == parsed.sequence)
    )
    if stored is not None and hmac.compare_digest(
        head_digest(Head(parsed.sequence, stored)), parsed.record_hash
    ):
        return Head(parsed.sequence, stored)
    return Head(parsed.sequence, "f" * 64)
