"""Therapist notes: written by a therapist or clinician of the participant's site."""

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.assessments.records import (
    EnteredInError,
    Problems,
    check_links,
    check_time,
    mark_entered_in_error,
    refuse,
    refuse_if_entered_in_error,
)
from app.audit.recorder import change_reason
from app.auth.principal import site_ids_of
from app.errors import InvalidInput, NotFound
from app.models import Participant, TherapistNote, User
from app.notes import schemas
from app.notes.schemas import NoteCreate, NoteUpdate
from app.participants.service import consent_time
from app.permissions import Role
from app.signatures import service as signatures
from app.vocabulary import RecordStatus
from app.wording import with_article

AUTHOR_ROLES = (Role.THERAPIST, Role.CLINICIAN)


def _author_problems(session: Session, participant: Participant, author_id: uuid.UUID) -> Problems:
    author = session.get(User, author_id)
    if author is None:
        return [("author_id", f"user {author_id} does not exist")]
    if author.role not in AUTHOR_ROLES:
        return [
            (
                "author_id",
                f"user {author.username} is {with_article(author.role)}; notes are written by a "
                "therapist or a clinician",
            )
        ]
    if not author.active:
        return [("author_id", f"user {author.username} is deactivated")]
    if participant.site_id not in site_ids_of(session, author.id):
        return [
            (
                "author_id",
                f"user {author.username} does not work at the site of participant "
                f"{participant.subject_id}",
            )
        ]
    return []


def create(session: Session, participant: Participant, data: NoteCreate) -> TherapistNote:
    problems = _author_problems(session, participant, data.author_id)
    problems += check_links(
        session, participant, dosing_session_id=data.dosing_session_id, visit_id=data.visit_id
    )
    check_time(problems, "written_at", data.written_at, consent_time(session, participant))
    refuse(problems)
    note = TherapistNote(
        participant_id=participant.id,
        dosing_session_id=data.dosing_session_id,
        visit_id=data.visit_id,
        author_id=data.author_id,
        written_at=data.written_at,
        text=data.text,
    )
    session.add(note)
    session.flush()
    return note


def get(session: Session, note_id: uuid.UUID) -> TherapistNote:
    note = session.get(TherapistNote, note_id)
    if note is None:
        raise NotFound(f"note {note_id} does not exist")
    return note


def correct(session: Session, note: TherapistNote, data: NoteUpdate) -> TherapistNote:
    refuse_if_entered_in_error(note, "note")
    if data.text == note.text:
        raise InvalidInput("the correction changes nothing: the text is already recorded")
    with change_reason(session, data.reason, "correct"):
        note.text = data.text
    return note


def enter_in_error(session: Session, note: TherapistNote, data: EnteredInError) -> TherapistNote:
    mark_entered_in_error(session, note, "note", data)
    return note


def listing(
    participant_id: uuid.UUID, *, include_entered_in_error: bool = False
) -> Select[TherapistNote]:
    stmt = select(TherapistNote).where(TherapistNote.participant_id == participant_id)
    if not include_entered_in_error:
        stmt = stmt.where(TherapistNote.record_status == RecordStatus.VALID.value)
    return stmt


# --- the read shape -----------------------------------------------------------------------------


def present_all(session: Session, notes: Sequence[TherapistNote]) -> list[schemas.NoteRead]:
    """The read shapes, each with its e-signatures (one query for all of them)."""
    signed = signatures.signatures_of(session, notes)
    return [
        schemas.NoteRead(
            id=note.id,
            participant_id=note.participant_id,
            dosing_session_id=note.dosing_session_id,
            visit_id=note.visit_id,
            author_id=note.author_id,
            written_at=note.written_at,
            text=note.text,
            record_status=RecordStatus(note.record_status),
            error_reason=note.error_reason,
            created_at=note.created_at,
            updated_at=note.updated_at,
            signatures=signed.get(note.id, []),
        )
        for note in notes
    ]


def present(session: Session, note: TherapistNote) -> schemas.NoteRead:
    return present_all(session, [note])[0]
