"""Request and response shapes of sign-in, sign-out and tokens. Secrets are `SecretStr`, so a
request model never shows a password in its repr or in a log line."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, StringConstraints

from app.auth.passwords import MIN_PASSWORD_LENGTH
from app.permissions import Role
from app.schemas import ReadModel, Reason, ShownOnce, WriteModel

MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; a bound keeps a request cheap to refuse


def _not_too_long(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return value


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return value


# Declared for the OpenAPI document; checked by the validators, whose messages say "characters".
_LONGEST = {"maxLength": MAX_PASSWORD_LENGTH}
Password = Annotated[SecretStr, AfterValidator(_not_too_long), Field(json_schema_extra=_LONGEST)]
NewPassword = Annotated[
    SecretStr,
    AfterValidator(_not_too_long),
    AfterValidator(_long_enough),
    Field(json_schema_extra={"minLength": MIN_PASSWORD_LENGTH, **_LONGEST}),
]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class LoginRequest(WriteModel):
    username: str = Field(min_length=1, max_length=64)
    password: Password


class UserSummaryRead(ReadModel):
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    site_ids: list[uuid.UUID]


class LoginResult(ShownOnce, ReadModel):
    access_token: str = Field(
        description="Send as 'Authorization: Bearer <token>'; the web client uses the cookie"
    )
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_at: datetime
    user: UserSummaryRead


class MeRead(UserSummaryRead):
    permissions: list[str] = Field(description="What this role may do (app/permissions.py)")
    token_id: uuid.UUID
    via_cookie: bool


class ApiTokenCreate(WriteModel):
    label: Label = Field(description="What the token is for, e.g. 'nightly SDTM export'")
    ttl_days: int | None = Field(
        default=None,
        ge=1,
        description="Days until it expires: by default VIGIL_API_TOKEN_TTL_DAYS, at most "
        "VIGIL_API_TOKEN_MAX_TTL_DAYS",
    )


class ApiTokenRead(ReadModel):
    """A token as listed: never its secret (only its hash is stored)."""

    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None
    last_seen_at: datetime | None
    last_seen_address: str | None


class IssuedApiTokenRead(ShownOnce, ApiTokenRead):
    token: str = Field(description="The token itself: shown this once, never again")


class RevokeRequest(WriteModel):
    reason: Reason
