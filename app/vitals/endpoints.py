from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select

from app.auth.deps import Authorize, ScopedReading
from app.checked_input import CheckedRoute, Refusal
from app.db import SessionDep
from app.dosing.deps import DosingSessionDep
from app.models import VitalReading as VitalReadingRow
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission
from app.vitals import service
from app.vitals.schemas import (
    BatchOutcome,
    EnteredInError,
    ReadingOutcome,
    VitalReadingBatchCreate,
    VitalReadingCreate,
    VitalReadingRead,
)


class ReadingRoute(CheckedRoute):
    """Refuses a reading the way a batch refuses one of its readings (the same fields, the same
    messages)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise service.validation_error(exc.errors()) from None

        return route_handler


class ReadingBatchRoute(ReadingRoute):
    """A reading holding a control character or a duplicate key is refused on its own, like any
    other refused reading of the batch; the others are stored."""

    def take_refusals(self, value: Any, refusals: list[Refusal]) -> tuple[Any, list[Refusal]]:
        readings = value.get("readings") if isinstance(value, dict) else None
        if not isinstance(readings, list):
            return value, refusals
        of_reading: dict[int, list[Refusal]] = {}
        rest = []
        for refusal in refusals:
            match refusal.loc:
                case ("readings", int(i), *_):
                    of_reading.setdefault(i, []).append(refusal)
                case _:
                    rest.append(refusal)
        for i, found in of_reading.items():
            inside = [{"loc": r.loc[2:], "msg": r.message} for r in found]  # past readings.<i>
            id_refused = any(r.loc[2:3] == ("id",) for r in found)
            readings[i] = service.RefusedReading(
                None if id_refused else service.id_as_sent(readings[i]),
                service.validation_error(inside),
            )
        return value, rest


router = APIRouter(tags=["vitals"], route_class=ReadingRoute)
batch_router = APIRouter(tags=["vitals"], route_class=ReadingBatchRoute)


def _source_default(session: SessionDep) -> str:
    return str(session.info.get("actor") or "api")


@router.post(
    "/dosing-sessions/{dosing_session_id}/vital-readings",
    response_model=VitalReadingRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "an identical replay of a stored reading", "model": VitalReadingRead}
    },
    dependencies=[Depends(Authorize(Permission.VITALS_RECORD))],
)
def post_reading(
    session: SessionDep,
    dosing_session: DosingSessionDep,
    reading: VitalReadingCreate,
    response: Response,
) -> VitalReadingRow:
    """Store one reading: 201 when new, 200 for an identical replay, 409 if the id is taken by
    other content, 422 naming the refused field."""
    row, created = service.ingest_one(session, dosing_session, reading, _source_default(session))
    if not created:
        response.status_code = status.HTTP_200_OK
    return row


@batch_router.post(
    "/dosing-sessions/{dosing_session_id}/vital-readings/batch",
    response_model=BatchOutcome,
    responses={413: {"description": "more readings than VIGIL_BATCH_SIZE_MAX"}},
    dependencies=[Depends(Authorize(Permission.VITALS_RECORD))],
)
def post_batch(
    session: SessionDep, dosing_session: DosingSessionDep, data: VitalReadingBatchCreate
) -> BatchOutcome:
    """Store a burst of readings, each validated on its own: a refused reading never costs the
    others, a replayed batch yields only duplicates. A control character or a key given twice
    inside a reading refuses that reading; outside any reading, the whole batch (422)."""
    result = service.ingest_batch(session, dosing_session, data.readings, _source_default(session))
    return BatchOutcome(
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=result.rejected,
        results=[
            ReadingOutcome(id=r.id, status=r.status, problem=r.problem) for r in result.results
        ],
    )


@router.get(
    "/dosing-sessions/{dosing_session_id}/vital-readings",
    response_model=Page[VitalReadingRead],
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def list_readings(
    session: SessionDep, dosing_session: DosingSessionDep, page: PageDep
) -> dict[str, object]:
    """The session's readings in measured_at order, entered-in-error ones included."""
    stmt = select(VitalReadingRow).where(VitalReadingRow.dosing_session_id == dosing_session.id)
    items, cursor = paginate(
        session, stmt, VitalReadingRow.id, page, order_by=[VitalReadingRow.measured_at]
    )
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/vital-readings/{reading_id}",
    response_model=VitalReadingRead,
    dependencies=[Depends(Authorize(Permission.SESSION_READ))],
)
def get_reading(reading: ScopedReading) -> VitalReadingRow:
    return reading


@router.post(
    "/vital-readings/{reading_id}/entered-in-error",
    response_model=VitalReadingRead,
    dependencies=[Depends(Authorize(Permission.VITALS_CORRECT))],
)
def enter_reading_in_error(
    session: SessionDep, reading: ScopedReading, data: EnteredInError
) -> VitalReadingRow:
    """Mark a reading entered in error; it is kept forever and audited with the reason."""
    return service.enter_in_error(session, reading, data.reason)


router.include_router(batch_router)
