import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.schemas import Code, ReadModel, WriteModel


class ProtocolVersionSummary(ReadModel):
    id: uuid.UUID
    protocol_key: str
    sequence: int
    version_label: str
    title: str
    sha256: str
    source_name: str
    loaded_at: datetime


class ProtocolVersionDetail(ProtocolVersionSummary):
    definition: dict[str, Any]


class StudyCreate(WriteModel):
    code: Code
    name: str = Field(min_length=1, max_length=300)
    protocol_key: str = Field(description="id of a loaded protocol, e.g. mdma-ptsd-phase3")


class Study(ReadModel):
    id: uuid.UUID
    code: str
    name: str
    protocol_key: str
    created_at: datetime


class SiteCreate(WriteModel):
    code: Code
    name: str = Field(min_length=1, max_length=300)
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. America/Denver")


class Site(ReadModel):
    id: uuid.UUID
    study_id: uuid.UUID
    code: str
    name: str
    timezone: str
