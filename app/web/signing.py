"""The sign form of a record's page (templates/_sign_form.html) and its post, on the API's
signing service: the meanings the caller's role may give, both components of the credentials
again (username prefilled, password typed), and a refusal shown on the page.

A refused password is answered, not raised, as the API answers it: the audit record of the
attempt and the failure count commit. Any other refusal (already signed, not the author) rolls
back to before the attempt, as the API's raised error rolls its request back."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.audit.signed_records import Signable
from app.auth.principal import Principal
from app.errors import VigilError
from app.signatures import service
from app.signatures.schemas import Meaning, SignatureCreate, SignatureRead

REFUSED_TITLES = {401: "Not signed", 403: "Not signed", 409: "Not signed", 429: "Account locked"}


@dataclass(frozen=True)
class SignForm:
    """What the sign form shows: where it posts, the meanings offered, what was typed, why a
    signing was refused."""

    action: str
    meanings: list[str]
    username: str
    meaning: str | None = None
    error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def sign_form(
    principal: Principal,
    model: type[Signable],
    action: str,
    signatures: Sequence[SignatureRead],
    refusal: "Refusal | None" = None,
    meaning: str | None = None,
) -> SignForm | None:
    """The form for this caller, or None when their role signs no such record or they have
    signed it already with every meaning they may give (a valid signature of this version).
    With ``refusal``, the form says why a signing was refused (without a form, the page's
    ``refused`` says it: answered, never raised, so a refused password's audit record stays)."""
    allowed = service.MEANINGS.get((model, principal.role)) or frozenset()
    given = {
        s.meaning
        for s in signatures
        if s.signer_id == principal.user_id and s.valid_for_current_version
    }
    meanings = [m.value for m in Meaning if m in allowed and m not in given]
    if not meanings:
        return None
    chosen = meaning if meaning in meanings else (meanings[0] if len(meanings) == 1 else None)
    if refusal is None:
        return SignForm(action, meanings, principal.username, chosen)
    return SignForm(action, meanings, principal.username, chosen, refusal.message, refusal.errors)


@dataclass(frozen=True)
class Refusal:
    status_code: int
    message: str
    errors: dict[str, str]


def sign(
    session: Session,
    principal: Principal,
    model: type[service.SignableT],
    record_id: uuid.UUID,
    form: FormData,
) -> Refusal | None:
    """Sign the record with what the form holds; None once signed, else why not."""
    try:
        data = SignatureCreate(
            meaning=str(form.get("meaning") or ""),
            username=str(form.get("username") or ""),
            password=str(form.get("password") or ""),
        )
    except ValidationError as refused:
        names = {str(e["loc"][0]) for e in refused.errors() if e["loc"]}
        errors = {
            name: message
            for name, message in {
                "meaning": "choose what your signature means",
                "username": "give your username",
                "password": "give your password",
            }.items()
            if name in names
        }
        return Refusal(422, "Not signed: " + "; ".join(errors.values()), errors)
    failed: service.ReauthenticationFailed | None = None
    try:
        with session.begin_nested():
            try:
                service.sign(session, principal, model, record_id, data)
            except service.ReauthenticationFailed as refused:
                failed = refused  # its audit record and the failure count are kept
    except VigilError as refused:  # rolled back to before the attempt
        return Refusal(refused.status_code, refused.detail, {})
    if failed is not None:
        at = "username" if isinstance(failed, service.NotTheSigner) else "password"
        return Refusal(failed.status_code, failed.detail, {at: failed.detail})
    return None
