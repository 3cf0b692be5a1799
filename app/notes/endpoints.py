from fastapi import APIRouter, Depends, status

from app.assessments.records import EnteredInError
from app.auth.deps import Authorize, ScopedNote, ScopedParticipant
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import TherapistNote
from app.notes import service
from app.notes.schemas import NoteCreate, NoteRead, NoteUpdate
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission

router = APIRouter(tags=["notes"], route_class=CheckedRoute)


@router.post(
    "/participants/{participant_id}/notes",
    response_model=NoteRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.NOTE_WRITE))],
)
def create_note(session: SessionDep, participant: ScopedParticipant, data: NoteCreate) -> NoteRead:
    return service.present(session, service.create(session, participant, data))


@router.get(
    "/participants/{participant_id}/notes",
    response_model=Page[NoteRead],
    dependencies=[Depends(Authorize(Permission.NOTE_READ))],
)
def list_notes(
    session: SessionDep,
    participant: ScopedParticipant,
    page: PageDep,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    stmt = service.listing(participant.id, include_entered_in_error=include_entered_in_error)
    items, cursor = paginate(session, stmt, TherapistNote.id, page)
    return {"items": service.present_all(session, items), "next_cursor": cursor}


@router.get(
    "/notes/{note_id}",
    response_model=NoteRead,
    dependencies=[Depends(Authorize(Permission.NOTE_READ))],
)
def get_note(session: SessionDep, note: ScopedNote) -> NoteRead:
    return service.present(session, note)


@router.patch(
    "/notes/{note_id}",
    response_model=NoteRead,
    dependencies=[Depends(Authorize(Permission.NOTE_WRITE))],
)
def correct_note(session: SessionDep, note: ScopedNote, data: NoteUpdate) -> NoteRead:
    """Replace the text; the previous text and the reason stay in the audit trail."""
    return service.present(session, service.correct(session, note, data))


@router.post(
    "/notes/{note_id}/entered-in-error",
    response_model=NoteRead,
    dependencies=[Depends(Authorize(Permission.NOTE_WRITE))],
)
def enter_note_in_error(session: SessionDep, note: ScopedNote, data: EnteredInError) -> NoteRead:
    """Mark the note entered in error: the row stays, flagged, with the reason audited."""
    return service.present(session, service.enter_in_error(session, note, data))
