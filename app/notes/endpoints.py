import uuid

from fastapi import APIRouter, status

from app.assessments.records import EnteredInError
from app.db import SessionDep
from app.models import TherapistNote
from app.notes import service
from app.notes.schemas import Note, NoteCorrection, NoteCreate
from app.pagination import Page, PageDep, paginate
from app.participants import service as participants

router = APIRouter(tags=["notes"])


@router.post(
    "/participants/{participant_id}/notes",
    response_model=Note,
    status_code=status.HTTP_201_CREATED,
)
def create_note(session: SessionDep, participant_id: uuid.UUID, data: NoteCreate) -> TherapistNote:
    return service.create(session, participants.get(session, participant_id), data)


@router.get("/participants/{participant_id}/notes", response_model=Page[Note])
def list_notes(
    session: SessionDep,
    participant_id: uuid.UUID,
    page: PageDep,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    participants.get(session, participant_id)
    stmt = service.listing(participant_id, include_entered_in_error=include_entered_in_error)
    items, cursor = paginate(session, stmt, TherapistNote.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/notes/{note_id}", response_model=Note)
def get_note(session: SessionDep, note_id: uuid.UUID) -> TherapistNote:
    return service.get(session, note_id)


@router.patch("/notes/{note_id}", response_model=Note)
def correct_note(session: SessionDep, note_id: uuid.UUID, data: NoteCorrection) -> TherapistNote:
    """Replace the text; the previous text and the reason stay in the audit trail."""
    return service.correct(session, service.get(session, note_id), data)


@router.post("/notes/{note_id}/entered-in-error", response_model=Note)
def enter_note_in_error(
    session: SessionDep, note_id: uuid.UUID, data: EnteredInError
) -> TherapistNote:
    """Mark the note entered in error: the row stays, flagged, with the reason audited."""
    return service.enter_in_error(session, service.get(session, note_id), data)
