"""`GET /audit-records/verify`: the verdict of a walk over the audit hash chain, as JSON."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import select

from app.audit.verify import (
    KEYED_DIGEST,
    RECORD_HASH,
    Damage,
    Head,
    keyed_digest,
    parse_noted_head,
    verify_chain,
)
from app.auth.deps import Authorize
from app.checked_input import CheckedRoute
from app.config import get_settings
from app.db import SessionDep
from app.errors import InvalidInput
from app.models import AuditRecord
from app.permissions import Permission
from app.schemas import ReadModel

router = APIRouter(tags=["audit"], route_class=CheckedRoute)


RECORD_HASH_GIVEN = (
    "this is a record hash, as `vigil audit verify` prints it, not the API's keyed digest; "
    "pass the head this route showed: head.sequence:head.keyed_digest (SEQ:hmac-sha256:HEX)"
)


class ChainHead(ReadModel):
    """A head as the API shows it: the record's hash is never shown, only a digest keyed by the
    server secret (``hmac-sha256:HEX``), which cannot be tested without the secret. It is not
    the record hash `vigil audit verify` prints (``sha256:HEX``), and neither check takes the
    other."""

    sequence: int
    keyed_digest: str = Field(description="hmac-sha256:HEX, keyed by the server secret")

    @classmethod
    def of(cls, head: Head) -> "ChainHead":
        return cls(sequence=head.sequence, keyed_digest=head_digest(head))


def head_digest(head: Head) -> str:
    return keyed_digest(head, get_settings().secret_key)


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
            description="SEQ:hmac-sha256:HEX of a head noted earlier "
            "(head.sequence:head.keyed_digest): the chain must still contain that record, "
            "unchanged (catches a removed or rewritten end)",
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
    """The head the caller noted, as SEQ:hmac-sha256:HEX (or SEQ:HEX): the record at SEQ today
    if its digest still matches, else a head that cannot match (so the walk reports the end as
    changed)."""
    sequence, kind, digest = parse_noted_head(text)
    if kind == RECORD_HASH:
        raise ValueError(RECORD_HASH_GIVEN)
    stored = session.scalar(select(AuditRecord.record_hash).where(AuditRecord.sequence == sequence))
    if stored is not None and hmac.compare_digest(
        head_digest(Head(sequence, stored)), f"{KEYED_DIGEST}:{digest}"
    ):
        return Head(sequence, stored)
    return Head(sequence, "f" * 64)
