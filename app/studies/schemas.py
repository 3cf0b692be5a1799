import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field

from app.schemas import Code, ReadModel, WriteModel


class ProtocolVersionSummaryRead(ReadModel):
    id: uuid.UUID
    protocol_key: str
    sequence: int
    version_label: str
    title: str
    sha256: str
    source_name: str
    loaded_at: datetime


class ProtocolVersionDetailRead(ProtocolVersionSummaryRead):
    definition: dict[str, Any]


TIME_ZONES = sorted(available_timezones())
_KNOWN_ZONES = frozenset(TIME_ZONES)


def _known_zone(value: str) -> str:
    if value not in _KNOWN_ZONES:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/Denver)")
    return value


TimeZone = Annotated[
    str, AfterValidator(_known_zone), Field(json_schema_extra={"enum": TIME_ZONES})
]


class StudyCreate(WriteModel):
    code: Code
    name: str = Field(min_length=1, max_length=300)
    protocol_key: str = Field(description="id of a loaded protocol, e.g. mdma-ptsd-phase3")


class StudyRead(ReadModel):
    id: uuid.UUID
    code: str
    name: str
    protocol_key: str
    created_at: datetime


class SiteCreate(WriteModel):
    code: Code
    name: str = Field(min_length=1, max_length=300)
    timezone: TimeZone = Field(default="UTC", description="IANA time zone, e.g. America/Denver")


class SiteRead(ReadModel):
    id: uuid.UUID
    study_id: uuid.UUID
    code: str
    name: str
    timezone: str
