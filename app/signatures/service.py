"""E-signatures: signing with re-authentication, the record hash, voiding on change, the read shape.

21 CFR 11.50: a signature shows the printed name of the signer, the time (UTC) and the meaning.
21 CFR 11.70: it is linked to its record by entity type, id and the SHA-256 of the exact version
signed, so it cannot be copied to another record or carried over to a changed one.
21 CFR 11.200: signing asks for both components (username and password) every time.

Who signs what (DESIGN.md section 2): clinicians sign adverse events (review, approval) and the
close-out of ended dosing sessions (approval); therapists sign the notes they wrote
(authorship); a clinician may sign a note as review, or as authorship when they wrote it.
"""

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from pwdlib.exceptions import UnknownHashError
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history

from app import clock
from app.assessments.records import RecordStatus
from app.audit.recorder import change_reason, record_event
from app.audit.values import jsonable
from app.auth import passwords
from app.auth.login import lockout_period
from app.auth.principal import Principal
from app.auth.scope import require_site
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, VigilError
from app.models import AdverseEvent, DosingSession, Participant, Signature, TherapistNote, User
from app.models.dosing import DosingSessionStatus
from app.permissions import Role
from app.signatures.schemas import Meaning, SignatureCreate, SignatureRead, SignatureStatus

Signable = AdverseEvent | TherapistNote | DosingSession
SignableT = TypeVar("SignableT", AdverseEvent, TherapistNote, DosingSession)
SIGNABLE = (AdverseEvent, TherapistNote, DosingSession)
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


class ReauthenticationFailed(VigilError):
    """The username or password given to sign is not the signer's.

    The attempt is audited (record_event) in the request's transaction, so this error must be
    answered, not raised through the unit of work: a raised error rolls the audit record back.
    """

    status_code = 401
    title = "Re-authentication failed"
    slug = "reauthentication-failed"


class AccountLocked(ReauthenticationFailed):
    """Too many failed password checks (sign-in or signing): no signing until the lock ends."""

    status_code = 429
    title = "Account locked"
    slug = "account-locked"


class NotTheSigner(ReauthenticationFailed):
    """The username given is not the caller's: nobody signs for someone else (11.200(a)(2))."""

    status_code = 403
    title = "Not the signer"
    slug = "not-the-signer"


# --- the record hash ----------------------------------------------------------------------------

# Bookkeeping that changes without the record's content changing; with the columns the model keeps
# out of its audit trail (__audit_exclude__), it is neither hashed nor a reason to void.
NOT_HASHED = frozenset({"updated_at"})


def entity_type(record: Signable) -> str:
    return type(record).__tablename__


@cache
def hashed_columns(model: type[Signable]) -> tuple[str, ...]:
    """The columns a signature covers: every audited column of the record but bookkeeping."""
    excluded = NOT_HASHED | model.__audit_exclude__
    return tuple(sorted(c.key for c in model.__mapper__.column_attrs if c.key not in excluded))


def _canonical_value(value: Any) -> Any:
    return clock.as_utc(value).isoformat() if isinstance(value, datetime) else jsonable(value)


def canonical(record: Signable) -> bytes:
    """The record version as canonical JSON (sorted keys, no whitespace), with its entity type,
    so that equal content in another table hashes differently."""
    content = {
        "entity_type": entity_type(record),
        "record": {
            key: _canonical_value(getattr(record, key)) for key in hashed_columns(type(record))
        },
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Signable) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def verify(signature: Signature, record: Signable) -> bool:
    """The signature is valid and was made on this record, in the version it has now."""
    return (
        signature.status == SignatureStatus.VALID
        and signature.entity_type == entity_type(record)
        and signature.entity_id == record.id
        and signature.record_hash == record_hash(record)
    )


# --- voiding ------------------------------------------------------------------------------------


def changed_columns(record: Signable) -> list[str]:
    """The hashed columns this flush is about to change, in column order."""
    changed = []
    for key in hashed_columns(type(record)):
        history = get_history(record, key)
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old != new:
            changed.append(key)
    return changed


def void_signatures_of_changed_records(session: Session) -> None:
    """Void the valid signatures of every signed record this flush changes.

    Called by the audit listener (app/audit/recorder.py) before it audits the flush, so the
    voided signatures are audited with the change, in the same transaction. The changed records
    are locked first (PostgreSQL; SQLite serialises writers anyway): a signing that holds the
    record's lock commits before this reads the signatures, so none slips past (lock order: the
    record, then the audit chain).
    """
    changed: dict[uuid.UUID, tuple[type[Signable], list[str]]] = {}
    for obj in session.dirty:
        if isinstance(obj, SIGNABLE) and session.is_modified(obj, include_collections=False):
            columns = changed_columns(obj)
            if columns:
                changed[obj.id] = (type(obj), columns)
    if not changed:
        return
    with session.no_autoflush:
        for model in {model for model, _ in changed.values()}:
            ids = [key for key, (m, _) in changed.items() if m is model]
            session.execute(select(model.id).where(model.id.in_(ids)).with_for_update())
        signatures = session.scalars(
            select(Signature).where(
                Signature.entity_id.in_(changed), Signature.status == SignatureStatus.VALID.value
            )
        ).all()
    now = clock.utcnow()
    for signature in signatures:
        model, columns = changed[signature.entity_id]
        if signature.entity_type != model.__tablename__:
            continue
        signature.status = SignatureStatus.VOIDED.value
        signature.voided_at = now
        signature.void_reason = f"record changed after signing: {', '.join(columns)}"


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
        raise Forbidden(f"a {principal.role.value} may not sign a {what}")
    if meaning not in allowed:
        names = " or ".join(sorted(m.value for m in allowed))
        message = f"a {principal.role.value} signs a {what} as {names}, not {meaning.value}"
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


def _refuse(session: Session, record: Signable, data: SignatureCreate, why: str) -> None:
    """Audit a signing refused for its credentials; never the password, nor a username that is
    not the signer's (it could be a password typed in the wrong box)."""
    record_event(
        session,
        REFUSED,
        entity_type(record),
        str(record.id),
        after={"meaning": data.meaning.value},
        reason=f"re-authentication failed: {why}",
    )


def reauthenticate(
    session: Session, principal: Principal, record: Signable, data: SignatureCreate
) -> User:
    """Both components again (11.200(a)(1)): the caller's own username and their password.

    A wrong password counts toward the sign-in lockout (app/auth/login.py), so a stolen token
    cannot be used to guess the password here; while locked, the password is not looked at.
    """
    user = session.scalars(
        select(User)
        .where(User.id == principal.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if data.username != user.username:
        _refuse(session, record, data, "the username is not the signer's own")
        raise NotTheSigner("a signature is made by its signer: give your own username and password")
    now = clock.utcnow()
    if user.locked_until is not None and user.locked_until > now:
        _refuse(session, record, data, "the account is locked")
        raise AccountLocked(
            "too many failed password checks: this account is locked until "
            f"{user.locked_until.isoformat(timespec='seconds')}; nothing was signed"
        )
    if not _password_matches(data.password.get_secret_value(), user.password_hash):
        failures = user.failed_login_count + 1
        period = lockout_period(failures)
        with change_reason(session, "failed re-authentication to sign: wrong password"):
            user.failed_login_count = failures
            if period is not None:
                user.locked_until = now + period
        _refuse(session, record, data, "wrong password")
        raise ReauthenticationFailed("the password is wrong; nothing was signed")
    if user.failed_login_count or user.locked_until is not None:
        with change_reason(session, "re-authenticated to sign"):
            user.failed_login_count = 0
            user.locked_until = None
    return user


def _password_matches(password: str, stored_hash: str) -> bool:
    try:
        return passwords.password_hash.verify(password, stored_hash)
    except UnknownHashError:  # an account without a usable password (a device)
        return False


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
