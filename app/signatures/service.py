"""E-signatures: signing with re-authentication, and the read shape. The record hash and the
voiding of signatures on change are the audit trail's (app/audit/signed_records.py).

21 CFR 11.50: a signature shows the printed name of the signer, the time (UTC) and the meaning.
21 CFR 11.70: it is linked to its record by entity type, id and the SHA-256 of the exact version
signed, so it cannot be copied to another record or carried over to a changed one.
21 CFR 11.200: signing asks for both components (username and password) every time.

Who signs what (DESIGN.md section 2): clinicians sign adverse events (review, approval) and the
close-out of ended dosing sessions (approval); therapists sign the notes they wrote
(authorship); a clinician may sign a note as review, or as authorship when they wrote it.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.audit.recorder import change_reason
from app.audit.signed_records import Signable, entity_type, record_hash
from app.auth import reauthentication
from app.auth.principal import Principal
from app.auth.reauthentication import AccountLocked as AccountLocked
from app.auth.reauthentication import NotTheSigner as NotTheSigner
from app.auth.reauthentication import ReauthenticationFailed as ReauthenticationFailed
from app.auth.scope import require_site
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.models import AdverseEvent, DosingSession, Participant, Signature, TherapistNote, User
from app.models.dosing import DosingSessionStatus
from app.permissions import Role
from app.signatures.schemas import Meaning, SignatureCreate, SignatureRead, SignatureStatus
from app.vocabulary import RecordStatus
from app.wording import with_article

SignableT = TypeVar("SignableT", AdverseEvent, TherapistNote, DosingSession)
WHAT: dict[type[Signable], str] = {
    AdverseEvent: "adverse event",
    TherapistNote: "note",
    DosingSession: "dosing session",
}

# Which meanings each role may give to each kind of record; a role absent here may not sign it.
MEANINGS: dict[tuple[type[Signable], Role], frozenset[Meaning]] = {
    (AdverseEvent, Role.CLINICIAN): frozenset({Meaning.REVIEW, Meaning.APPROVAL}),
    (DosingSession, Role.CLINICIAN): frozenset({Meaning.APPROVAL}),
    (TherapistNote, Role.THERAPIST): frozenset({Meaning.AUTHORSHIP}),
    (TherapistNote, Role.CLINICIAN): frozenset({Meaning.AUTHORSHIP, Meaning.REVIEW}),
}

REFUSED = "signature_refused"  # the audit action of a signing refused for its credentials


# --- signing ------------------------------------------------------------------------------------


def load_for_signing(
    session: Session, principal: Principal, model: type[SignableT], record_id: uuid.UUID
) -> SignableT:
    """The record, locked for the rest of the transaction; 404 outside the caller's sites."""
    what = f"{WHAT[model]} {record_id}"
    record = session.get(model, record_id, with_for_update=True, populate_existing=True)
    if record is None:
        raise NotFound(f"{what} does not exist")
    participant = session.get_one(Participant, record.participant_id)
    require_site(principal, participant.site_id, what)
    return record


def _check_may_sign(principal: Principal, record: Signable, meaning: Meaning) -> None:
    model, what = type(record), WHAT[type(record)]
    allowed = MEANINGS.get((model, principal.role))
    if allowed is None:
        raise Forbidden(f"{with_article(principal.role.value)} may not sign {with_article(what)}")
    if meaning not in allowed:
        names = " or ".join(sorted(m.value for m in allowed))
        role, signed = with_article(principal.role.value), with_article(what)
        message = f"{role} signs {signed} as {names}, not {meaning.value}"
        raise InvalidInput(f"meaning: {message}", errors=[{"field": "meaning", "message": message}])
    authored = isinstance(record, TherapistNote) and record.author_id == principal.user_id
    if meaning is Meaning.AUTHORSHIP and not authored:
        raise Forbidden(f"only the author of {what} {record.id} can sign it as authorship")


def _check_state(record: Signable) -> None:
    what = f"{WHAT[type(record)]} {record.id}"
    if isinstance(record, DosingSession):
        if record.status != DosingSessionStatus.ENDED:
            raise Conflict(
                f"{what} is {record.status}; its close-out is signed once the session has ended"
            )
    elif record.record_status == RecordStatus.ENTERED_IN_ERROR:
        raise Conflict(f"{what} was entered in error ({record.error_reason}); it cannot be signed")


def reauthenticate(
    session: Session, principal: Principal, record: Signable, data: SignatureCreate
) -> User:
    """Both components again (11.200(a)(1)): the caller's own username and their password."""
    return reauthentication.reauthenticate(
        session,
        principal,
        data.username,
        data.password.get_secret_value(),
        act="sign",
        actor="signer",
        refused=reauthentication.Refused(
            REFUSED, entity_type(record), str(record.id), {"meaning": data.meaning.value}
        ),
    )


def sign(
    session: Session,
    principal: Principal,
    model: type[SignableT],
    record_id: uuid.UUID,
    data: SignatureCreate,
) -> tuple[Signature, SignableT]:
    """Sign the record as it is now. Raises ReauthenticationFailed after auditing the attempt
    (see there: answer it, do not let it roll the transaction back)."""
    record = load_for_signing(session, principal, model, record_id)
    _check_may_sign(principal, record, data.meaning)
    _check_state(record)
    user = reauthenticate(session, principal, record, data)
    duplicate = session.scalar(
        select(Signature.id).where(
            Signature.entity_type == entity_type(record),
            Signature.entity_id == record.id,
            Signature.signer_id == user.id,
            Signature.meaning == data.meaning.value,
            Signature.status == SignatureStatus.VALID.value,
        )
    )
    if duplicate is not None:
        raise Conflict(
            f"you already signed {WHAT[model]} {record.id} as {data.meaning.value} "
            f"(signature {duplicate}); it is still valid"
        )
    signature = Signature(
        entity_type=entity_type(record),
        entity_id=record.id,
        signer_id=user.id,
        printed_name=user.display_name,
        meaning=data.meaning.value,
        signed_at=clock.utcnow(),
        record_hash=record_hash(record),
        status=SignatureStatus.VALID.value,
    )
    with change_reason(session, f"e-signature: {data.meaning.value} of {WHAT[model]}"):
        session.add(signature)
    return signature, record


# --- the read shape -----------------------------------------------------------------------------


def present(signature: Signature, record: Signable) -> SignatureRead:
    return _view(signature, record_hash(record))


def _view(signature: Signature, current_hash: str) -> SignatureRead:
    return SignatureRead(
        id=signature.id,
        entity_type=signature.entity_type,
        entity_id=signature.entity_id,
        signer_id=signature.signer_id,
        printed_name=signature.printed_name,
        meaning=Meaning(signature.meaning),
        signed_at=signature.signed_at,
        status=SignatureStatus(signature.status),
        voided_at=signature.voided_at,
        void_reason=signature.void_reason,
        record_hash=signature.record_hash,
        valid_for_current_version=(
            signature.status == SignatureStatus.VALID and signature.record_hash == current_hash
        ),
    )


def signatures_of(
    session: Session, records: Sequence[Signable]
) -> dict[uuid.UUID, list[SignatureRead]]:
    """Every signature of each record, valid and voided, oldest first: one query for all."""
    if not records:
        return {}
    hashes = {(entity_type(r), r.id): record_hash(r) for r in records}
    stmt = (
        select(Signature)
        .where(
            Signature.entity_id.in_({r.id for r in records}),
            Signature.entity_type.in_({entity_type(r) for r in records}),
        )
        .order_by(Signature.signed_at, Signature.id)
    )
    found: dict[uuid.UUID, list[SignatureRead]] = defaultdict(list)
    for signature in session.scalars(stmt):
        current = hashes.get((signature.entity_type, signature.entity_id))
        if current is not None:
            found[signature.entity_id].append(_view(signature, current))
    return found
