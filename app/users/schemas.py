"""Request and response shapes of account and device management (admins only)."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from app.auth.schemas import ApiTokenRead, NewPassword
from app.permissions import Role
from app.schemas import ReadModel, Reason, ShownOnce, WriteModel

Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@+-]+$"
    ),
]
DeviceName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    ),
]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _person(role: Role) -> Role:
    if role is Role.DEVICE:
        raise ValueError("devices are created with POST /api/v1/devices (they have no password)")
    return role


class UserCreate(WriteModel):
    username: Username
    display_name: DisplayName = Field(description="Printed name, shown on signatures")
    role: Annotated[Role, AfterValidator(_person)]
    password: NewPassword
    site_ids: list[uuid.UUID] = Field(
        default_factory=list,
        description="Sites the user works at: one or more for site staff and pharmacists, "
        "none for medical_monitor, sponsor and admin",
    )


class UserRead(ReadModel):
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    active: bool
    site_ids: list[uuid.UUID]
    failed_login_count: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime


class ReasonRequest(WriteModel):
    reason: Reason


class SitesUpdate(WriteModel):
    site_ids: list[uuid.UUID] = Field(description="The user's sites from now on (replaces them)")
    reason: Reason


class DeviceCreate(WriteModel):
    name: DeviceName = Field(description="Unique name of the tablet, e.g. tablet-boulder-3")
    site_id: uuid.UUID


class DeviceTokenRotate(WriteModel):
    reason: Reason
    overlap_minutes: int | None = Field(
        default=None,
        ge=0,
        le=10080,
        description="How long the old token keeps working beside the new one, so the tablet "
        "loses no reading while it switches; 0 revokes it now (a lost or stolen tablet). "
        "Default: VIGIL_DEVICE_TOKEN_OVERLAP_MINUTES (60)",
    )


class DeviceClockRead(ReadModel):
    offset_seconds: float = Field(
        description="Device clock minus server clock (positive: the device is ahead), the "
        "median of its last few requests' Date or X-Sent-At headers"
    )
    measured_at: datetime = Field(description="When the last sample was taken")
    beyond_tolerance: bool = Field(
        description="Off by more than VIGIL_CLOCK_SKEW_SECONDS: its readings are flagged"
    )


class DeviceRead(ReadModel):
    id: uuid.UUID
    name: str
    site_id: uuid.UUID | None
    active: bool
    created_at: datetime
    last_seen_at: datetime | None = Field(description="Last request made with any of its tokens")
    last_seen_address: str | None
    tokens: list[ApiTokenRead] = Field(
        description="Its tokens that still work (an old one during a rotation's overlap shows "
        "its expires_at)"
    )
    clock: DeviceClockRead | None = Field(
        description="Its clock offset; null until it sends a Date or X-Sent-At header"
    )


class DeviceCredentialRead(ShownOnce, ReadModel):
    device: DeviceRead
    token: str = Field(description="The device's token: shown this once, never again")
