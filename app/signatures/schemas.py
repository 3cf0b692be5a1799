import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, SecretStr, StringConstraints

from app.models.signature import SignatureStatus
from app.schemas import ReadModel, WriteModel


class Meaning(StrEnum):
    """What the signer attests by signing (21 CFR 11.50(a)(3))."""

    AUTHORSHIP = "authorship"  # I wrote this record
    REVIEW = "review"  # I have reviewed this record
    APPROVAL = "approval"  # I approve this record (an assessment, a session's close-out)


class SignatureCreate(WriteModel):
    """Signing re-asks both components of the signer's credentials, every time (11.200(a))."""

    meaning: Meaning
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="the signer's own username: a signature is never made for someone else"
    )
    password: Annotated[SecretStr, Field(min_length=1, max_length=1024)] = Field(
        description="the signer's password, checked again for this signature"
    )


class SignatureRead(ReadModel):
    """A signature as shown with its record: printed name, time and meaning (11.50)."""

    id: uuid.UUID
    entity_type: str = Field(description="the table of the signed record")
    entity_id: uuid.UUID
    signer_id: uuid.UUID
    printed_name: str
    meaning: Meaning
    signed_at: datetime = Field(description="UTC")
    status: SignatureStatus
    voided_at: datetime | None
    void_reason: str | None = Field(description="e.g. 'record changed after signing: text'")
    record_hash: str = Field(description="SHA-256 of the record version signed (11.70)")
    valid_for_current_version: bool = Field(
        description="the signature is valid and its record_hash is the hash of the record as "
        "it is now; false once voided, or if the record was changed behind Vigil's back"
    )
