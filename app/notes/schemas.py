import uuid
from datetime import datetime

from pydantic import Field

from app.schemas import AwareDatetime, ReadModel, Reason, Text, WriteModel
from app.signatures.schemas import SignatureRead
from app.vocabulary import RecordStatus


class NoteCreate(WriteModel):
    text: Text
    written_at: AwareDatetime
    author_id: uuid.UUID
    dosing_session_id: uuid.UUID | None = None
    visit_id: uuid.UUID | None = None


class NoteUpdate(WriteModel):
    """New text; the previous text stays in the audit trail with the reason."""

    text: Text
    reason: Reason


class NoteRead(ReadModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    dosing_session_id: uuid.UUID | None
    visit_id: uuid.UUID | None
    author_id: uuid.UUID | None
    written_at: datetime
    text: str
    record_status: RecordStatus
    error_reason: str | None
    created_at: datetime
    updated_at: datetime
    signatures: list[SignatureRead] = Field(
        description="every e-signature of the record, voided ones included, oldest first"
    )
