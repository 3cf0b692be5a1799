"""Loading a record for a caller: 404 when it does not exist OR lies outside the caller's sites,
so a user of site A cannot even learn that a participant of site B exists."""

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.principal import CurrentPrincipal, Principal
from app.db import SessionDep
from app.errors import NotFound
from app.models import Participant, Site

# Scoped loaders for every other record (visit, dosing session, dose, reading, adverse event,
# assessment, note) go through the participant the record belongs to: see participant_in_scope.


def require_site(principal: Principal, site_id: uuid.UUID, what: str) -> None:
    if not principal.sees_site(site_id):
        raise NotFound(f"{what} does not exist")


def participant_in_scope(
    session: SessionDep, principal: CurrentPrincipal, participant_id: uuid.UUID
) -> Participant:
    participant = session.get(Participant, participant_id)
    if participant is None or not principal.sees_site(participant.site_id):
        raise NotFound(f"participant {participant_id} does not exist")
    return participant


def site_in_scope(session: SessionDep, principal: CurrentPrincipal, site_id: uuid.UUID) -> Site:
    site = session.get(Site, site_id)
    if site is None or not principal.sees_site(site.id):
        raise NotFound(f"site {site_id} does not exist")
    return site


ScopedParticipant = Annotated[Participant, Depends(participant_in_scope)]
ScopedSite = Annotated[Site, Depends(site_in_scope)]
