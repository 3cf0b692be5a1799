"""GET /dosing-sessions/{id}/replay: what a protocol version would have raised over a finished
session, compared with the version it ran under. A read of safety findings, hence
CLINICAL_ALERT_READ; the session is loaded through the scoped dependency, so another site's
session is a 404."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app import clock
from app.auth.deps import Authorize
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.dosing.deps import DosingSessionDep
from app.permissions import Permission
from app.protocols import service as protocols
from app.protocols.rule_schema import Severity
from app.replay import service
from app.replay.schemas import ReplayReport

router = APIRouter(tags=["replay"], route_class=CheckedRoute)


@router.get(
    "/dosing-sessions/{dosing_session_id}/replay",
    response_model=ReplayReport,
    dependencies=[Depends(Authorize(Permission.CLINICAL_ALERT_READ))],
)
def replay_dosing_session(
    session: SessionDep,
    dosing_session: DosingSessionDep,
    protocol_version_id: Annotated[
        uuid.UUID,
        Query(description="The protocol version to replay the session under (the target)"),
    ],
    min_severity: Annotated[
        Severity | None,
        Query(description="Leave out findings below this severity (info < warning < critical)"),
    ] = None,
) -> ReplayReport:
    """Replay a finished (ended) session under another version of its protocol: every finding
    the target would have raised, and which of them the session's own version raised too.
    Read-only: no alert is opened; the replay itself is audited. 409 for a session not ended,
    422 for a version of another protocol, 404 for an unknown version."""
    target = protocols.get_version(session, protocol_version_id)
    return service.replay_session(
        session, dosing_session, target, now=clock.utcnow(), min_severity=min_severity
    )
