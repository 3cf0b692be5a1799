"""Loading-or-404 of a dosing session from the path, shared by the dosing and vitals routes."""

import uuid
from typing import Annotated

from fastapi import Depends

from app.db import SessionDep
from app.dosing import service
from app.models import DosingSession


def load_dosing_session(session: SessionDep, dosing_session_id: uuid.UUID) -> DosingSession:
    return service.get(session, dosing_session_id)


DosingSessionDep = Annotated[DosingSession, Depends(load_dosing_session)]
