"""Accounts and bedside devices: admins only (Permission.USER_MANAGE)."""

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Depends, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.deps import Authorize, CurrentPrincipal
from app.auth.schemas import ApiTokenRead
from app.checked_input import CheckedRoute
from app.clock import utcnow
from app.config import get_settings
from app.db import SessionDep
from app.models import User as UserRow
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission, Role
from app.users import service
from app.users.schemas import (
    DeviceClockRead,
    DeviceCreate,
    DeviceCredentialRead,
    DeviceRead,
    DeviceTokenRotate,
    ReasonRequest,
    SitesUpdate,
    UserCreate,
    UserRead,
)

router = APIRouter(tags=["users"], route_class=CheckedRoute)
MANAGE = [Depends(Authorize(Permission.USER_MANAGE))]


def _users(session: Session, rows: Sequence[UserRow]) -> list[UserRead]:
    """The read shape, with each user's sites (one query for the page)."""
    sites = service.site_ids_by_user(session, (u.id for u in rows))
    columns = [name for name in UserRead.model_fields if name != "site_ids"]
    return [
        UserRead.model_validate(
            {name: getattr(row, name) for name in columns} | {"site_ids": sorted(sites[row.id])}
        )
        for row in rows
    ]


def _one(session: Session, row: UserRow) -> UserRead:
    return _users(session, [row])[0]


def _devices(session: Session, rows: Sequence[UserRow]) -> list[DeviceRead]:
    sites = service.site_ids_by_user(session, (d.id for d in rows))
    tokens = service.device_tokens(session, (d.id for d in rows))
    clocks = service.clocks_of(session, (d.id for d in rows))
    tolerance = get_settings().clock_skew_seconds
    now = utcnow()
    devices = []
    for row in rows:
        seen_at, seen_from = service.last_seen(tokens[row.id])
        clock = clocks.get(row.id)
        devices.append(
            DeviceRead(
                id=row.id,
                name=row.username,
                site_id=min(sites[row.id], default=None),
                active=row.active,
                created_at=row.created_at,
                last_seen_at=seen_at,
                last_seen_address=seen_from,
                tokens=[
                    ApiTokenRead.model_validate(t) for t in service.live_tokens(tokens[row.id], now)
                ],
                clock=None
                if clock is None
                else DeviceClockRead(
                    offset_seconds=clock.offset_seconds,
                    measured_at=clock.measured_at,
                    beyond_tolerance=abs(clock.offset_seconds) > tolerance,
                ),
            )
        )
    return devices


# --- users --------------------------------------------------------------------------------------


@router.post(
    "/users", response_model=UserRead, status_code=status.HTTP_201_CREATED, dependencies=MANAGE
)
def create_user(session: SessionDep, data: UserCreate) -> UserRead:
    user = service.create_user(
        session,
        username=data.username,
        display_name=data.display_name,
        role=data.role,
        password=data.password.get_secret_value(),
        site_ids=data.site_ids,
    )
    return _one(session, user)


@router.get("/users", response_model=Page[UserRead], dependencies=MANAGE)
def list_users(
    session: SessionDep, page: PageDep, role: Role | None = None, active: bool | None = None
) -> dict[str, object]:
    stmt = select(UserRow)
    if role is not None:
        stmt = stmt.where(UserRow.role == role.value)
    if active is not None:
        stmt = stmt.where(UserRow.active.is_(active))
    rows, cursor = paginate(session, stmt, UserRow.id, page)
    return {"items": _users(session, rows), "next_cursor": cursor}


@router.get("/users/{user_id}", response_model=UserRead, dependencies=MANAGE)
def get_user(session: SessionDep, user_id: uuid.UUID) -> UserRead:
    return _one(session, service.get_user(session, user_id))


@router.post("/users/{user_id}/deactivate", response_model=UserRead, dependencies=MANAGE)
def deactivate_user(
    session: SessionDep, principal: CurrentPrincipal, user_id: uuid.UUID, data: ReasonRequest
) -> UserRead:
    """Switch an account off for good and revoke its tokens (accounts are never deleted)."""
    user = service.get_user(session, user_id)
    service.deactivate(session, user, data.reason, by_user_id=principal.user_id)
    return _one(session, user)


@router.post("/users/{user_id}/unlock", response_model=UserRead, dependencies=MANAGE)
def unlock_user(session: SessionDep, user_id: uuid.UUID, data: ReasonRequest) -> UserRead:
    """Lift a lockout after failed sign-ins and reset the failure count."""
    user = service.get_user(session, user_id)
    service.unlock(session, user, data.reason)
    return _one(session, user)


@router.post("/users/{user_id}/sites", response_model=UserRead, dependencies=MANAGE)
def set_user_sites(session: SessionDep, user_id: uuid.UUID, data: SitesUpdate) -> UserRead:
    """Replace the sites a user (or a device) works at; the change is audited with its reason."""
    user = service.get_user(session, user_id)
    service.set_sites(session, user, data.site_ids, data.reason)
    return _one(session, user)


# --- devices ------------------------------------------------------------------------------------


@router.post(
    "/devices",
    response_model=DeviceCredentialRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=MANAGE,
)
def create_device(session: SessionDep, data: DeviceCreate) -> DeviceCredentialRead:
    """Register a bedside tablet at one site; its token is in the answer, this once."""
    device, plaintext = service.create_device(session, data.name, data.site_id)
    return DeviceCredentialRead(device=_devices(session, [device])[0], token=plaintext)


@router.get("/devices", response_model=Page[DeviceRead], dependencies=MANAGE)
def list_devices(session: SessionDep, page: PageDep) -> dict[str, object]:
    """Devices with when and from where each was last seen, and their clock offsets."""
    stmt = select(UserRow).where(UserRow.role == Role.DEVICE.value)
    rows, cursor = paginate(session, stmt, UserRow.id, page)
    return {"items": _devices(session, rows), "next_cursor": cursor}


@router.post("/devices/{device_id}/token", response_model=DeviceCredentialRead, dependencies=MANAGE)
def rotate_device_token(
    session: SessionDep, device_id: uuid.UUID, data: DeviceTokenRotate
) -> DeviceCredentialRead:
    """A new token for a device; the old one keeps working for the overlap (60 min by
    default), then expires; ``overlap_minutes: 0`` revokes it now. Audited with the reason."""
    device = service.get_device(session, device_id)
    _, plaintext = service.rotate_device_token(session, device, data.reason, data.overlap_minutes)
    return DeviceCredentialRead(device=_devices(session, [device])[0], token=plaintext)
