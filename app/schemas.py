"""Shared pydantic building blocks for request and response shapes."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.clock import as_utc


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WriteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


AwareDatetime = Annotated[datetime, AfterValidator(as_utc)]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=2000),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$"
    ),
]
