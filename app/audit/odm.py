"""The audit trail rendered as CDISC ODM 1.3.2: an ``AuditRecord`` per audit record (who, where,
when, why) and a ``Signature`` per e-signature, with the users and signature meanings in
``AdminData``. ODM's audit record has no place for the recorded values or the hashes, so each
one names its place in the hash chain in ``SourceID``; the NDJSON export (app/audit/export.py)
is the one to verify. Written as text, record by record: constant memory whatever the trail's
size. Validated against the ODM XSD that odmlib ships (tests/audit/test_odm.py).
"""

import uuid
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import select

from app import clock
from app.audit.trail_export import (
    Readers,
    actor_names,
    exported_event,
    records_query,
    signatures_query,
)
from app.models import AuditRecord, Signature, User

NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
STUDY_OID = "VIGIL"
MDV_OID = "MDV.VIGIL.AUDIT"
LOCATION_OID = "LOC.VIGIL"
LEGAL_REASON = (
    "An electronic signature under 21 CFR Part 11, the legally binding equivalent of the "
    "signer's handwritten signature"
)


def _at(value: datetime) -> str:
    return clock.as_utc(value).isoformat()


def user_oid(actor: str) -> str:
    return "USR." + actor.replace(" ", "_")


def _element(name: str, text: str, **attributes: str) -> str:
    attrs = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    return f"<{name}{attrs}>{escape(text)}</{name}>"


def _user(actor: str, name: str | None) -> str:
    login = actor.partition(":")[2] or actor
    parts = [_element("LoginName", login), _element("DisplayName", name or actor)]
    if name:
        parts.append(_element("FullName", name))
    return f"<User OID={quoteattr(user_oid(actor))}>{''.join(parts)}</User>"


def audit_record(row: Any) -> str:
    source = (
        f"vigil-audit #{row.sequence} chain v{row.chain_version or 1}: {row.action} "
        f"{row.entity_type}/{row.entity_id}; previous sha256:{row.previous_hash}; "
        f"record sha256:{row.record_hash}"
    )
    return (
        f'<AuditRecord ID="AR.{row.sequence}" EditPoint="DataManagement">'
        f"<UserRef UserOID={quoteattr(user_oid(row.actor))}/>"
        f'<LocationRef LocationOID="{LOCATION_OID}"/>'
        f"{_element('DateTimeStamp', _at(row.occurred_at))}"
        f"{_element('ReasonForChange', row.reason or f'{row.action} {row.entity_type}')}"
        f"{_element('SourceID', source)}"
        "</AuditRecord>"
    )


def signature(row: Any, signer: str) -> str:
    return (
        f'<Signature ID="SG.{row.id}">'
        f"<UserRef UserOID={quoteattr(user_oid(signer))}/>"
        f'<LocationRef LocationOID="{LOCATION_OID}"/>'
        f"<SignatureRef SignatureOID={quoteattr('SD.' + row.meaning)}/>"
        f"{_element('DateTimeStamp', _at(row.signed_at))}"
        "</Signature>"
    )


def odm_chunks(readers: Readers, event_id: uuid.UUID, batch: int = 500) -> Iterator[bytes]:
    with readers() as session:
        event = exported_event(session, event_id)
        names = actor_names(session)
        actors = session.scalars(select(AuditRecord.actor).distinct()).all()
        signers = {
            user_id: f"{role}:{username}"
            for user_id, role, username in session.execute(
                select(User.id, User.role, User.username)
            )
        }
        meanings = session.scalars(select(Signature.meaning).distinct()).all()
        yield _head(event, sorted(set(actors) | set(signers.values())), names, meanings)
        parts = (audit_record(row) for row in session.execute(records_query()))
        yield from _batched(parts, batch, "<AuditRecords>", "</AuditRecords>")
        signed = (
            signature(row, signers[row.signer_id]) for row in session.execute(signatures_query())
        )
        yield from _batched(signed, batch, "<Signatures>", "</Signatures>")
        yield b"</ClinicalData></ODM>\n"


def _batched(parts: Iterator[str], batch: int, opening: str, closing: str) -> Iterator[bytes]:
    first = True
    while chunk := "".join(islice(parts, batch)):
        yield ((opening if first else "") + chunk).encode()
        first = False
    if not first:
        yield closing.encode()


def _head(event: AuditRecord, actors: list[str], names: dict[str, str], meanings: Any) -> bytes:
    created = _at(event.occurred_at)
    users = "".join(_user(actor, names.get(actor)) for actor in actors)
    definitions = "".join(
        f'<SignatureDef OID={quoteattr("SD." + meaning)} Methodology="Electronic">'
        f"{_element('Meaning', meaning)}{_element('LegalReason', LEGAL_REASON)}</SignatureDef>"
        for meaning in sorted(meanings)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ODM xmlns="{NAMESPACE}" FileType="Snapshot" '
        f'FileOID="VIGIL.AUDIT.{event.id}" CreationDateTime="{created}" ODMVersion="1.3.2" '
        f'Originator="Vigil" SourceSystem="Vigil">'
        f'<Study OID="{STUDY_OID}"><GlobalVariables>'
        "<StudyName>Vigil audit trail</StudyName>"
        "<StudyDescription>Every audited change and event of one Vigil database, in the "
        "order of its hash chain</StudyDescription>"
        "<ProtocolName>all studies</ProtocolName></GlobalVariables>"
        f'<MetaDataVersion OID="{MDV_OID}" Name="Vigil audit trail"/></Study>'
        f"<AdminData>{users}"
        f'<Location OID="{LOCATION_OID}" Name="Vigil server">'
        f'<MetaDataVersionRef StudyOID="{STUDY_OID}" MetaDataVersionOID="{MDV_OID}" '
        f'EffectiveDate="{created[:10]}"/></Location>{definitions}</AdminData>'
        f'<ClinicalData StudyOID="{STUDY_OID}" MetaDataVersionOID="{MDV_OID}">'
    ).encode()
