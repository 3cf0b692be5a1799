"""Loading a record for a caller: 404 when it does not exist OR lies outside the caller's sites,
so a user of site A cannot even learn that a participant of site B exists.

Plain functions of a session and a principal, no HTTP: every path id of the API is loaded through
one of the ``Scoped*`` dependencies of app/auth/deps.py, built on :func:`load_in_scope` (never
by a service's ``get`` in an endpoint); lists are narrowed with the ``only_*`` filters; ids that
come in a request body go through ``referenced_*``, which answer the same 422 for a record that
does not exist and for one the caller may not see.
"""

import uuid
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Row, Select, bindparam, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.auth.principal import Principal
from app.errors import Forbidden, InvalidInput, NotFound
from app.models import (
    AccessToken,
    AdverseEvent,
    Alert,
    Assessment,
    Dose,
    DosingSession,
    NotificationSubscription,
    Participant,
    ProtocolVersion,
    Signature,
    Site,
    Study,
    TherapistNote,
    User,
    Visit,
    VitalReading,
)
from app.permissions import VISIT_ALERT_KINDS, Permission, allows, sees_alert_kind
from app.wording import with_article


def require_site(principal: Principal, site_id: uuid.UUID, what: str) -> None:
    if not principal.sees_site(site_id):
        raise NotFound(f"{what} does not exist")


# --- the site a record belongs to ---------------------------------------------------------------


# Each statement built once, its record's id bound at execution: a scoped loader runs on most
# requests (docs/architecture.md, "statements built once").
_RECORD_ID: BindParameter[uuid.UUID] = bindparam("record_id")


def _through_participant(model: Any) -> Select[Any]:
    return (
        select(model, Participant.site_id)
        .join(Participant, Participant.id == model.participant_id)
        .where(model.id == _RECORD_ID)
    )


def _through_dosing_session(model: Any) -> Select[Any]:
    return (
        select(model, Participant.site_id)
        .join(DosingSession, DosingSession.id == model.dosing_session_id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .where(model.id == _RECORD_ID)
    )


def _own_site(model: Any, site_id: Any) -> Select[Any]:
    return select(model, site_id).where(model.id == _RECORD_ID)


# For each site-scoped model: a query of (the row, the id of its site).
_WITH_SITE: dict[type, Select[Any]] = {
    Participant: _own_site(Participant, Participant.site_id),
    Visit: _through_participant(Visit),
    DosingSession: _through_participant(DosingSession),
    AdverseEvent: _through_participant(AdverseEvent),
    Assessment: _through_participant(Assessment),
    TherapistNote: _through_participant(TherapistNote),
    Dose: _through_dosing_session(Dose),
    VitalReading: _through_dosing_session(VitalReading),
    Site: _own_site(Site, Site.id),
    Alert: _own_site(Alert, Alert.site_id),
}


def _with_site(session: Session, model: type, record_id: uuid.UUID) -> Row[Any, uuid.UUID] | None:
    """The row of ``model`` with that id and the id of its site, or None."""
    return session.execute(_WITH_SITE[model], {"record_id": record_id}).first()


def load_in_scope(
    session: Session, principal: Principal, model: type, record_id: uuid.UUID, what: str
) -> Any:
    """The row of ``model`` with id ``record_id`` if the caller sees its site, else 404 with
    the very answer a missing row gets."""
    found = _with_site(session, model, record_id)
    if found is None or not _sees(principal, found[0], found[1]):
        raise NotFound(f"{what} {record_id} does not exist")
    return found[0]


def _sees(principal: Principal, record: Any, site_id: uuid.UUID) -> bool:
    """The record's site is one of the caller's, and an alert is of a kind its role sees (the
    coordinator: visit alerts only)."""
    if isinstance(record, Alert) and not sees_alert_kind(principal.role, record.kind):
        return False
    return principal.sees_site(site_id)


def study_visible(session: Session, principal: Principal, study_id: uuid.UUID) -> bool:
    """A study is visible to a site-scoped caller who works at one of its sites."""
    if principal.all_sites:
        return True
    found = session.scalar(
        select(Site.id).where(Site.study_id == study_id, Site.id.in_(principal.site_ids)).limit(1)
    )
    return found is not None


# --- lists: only what the caller's sites hold ----------------------------------------------------


def _sites_clause(principal: Principal, site_id: Any) -> ColumnElement[bool] | None:
    return None if principal.all_sites else site_id.in_(principal.site_ids)


def only_visible_sites(
    stmt: Select[Any], principal: Principal, site_id: InstrumentedAttribute[uuid.UUID]
) -> Select[Any]:
    """Narrow ``stmt`` to rows whose ``site_id`` column is one of the caller's sites."""
    clause = _sites_clause(principal, site_id)
    return stmt if clause is None else stmt.where(clause)


def only_visible_alerts(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """Narrow an alert listing to the caller's sites and to the kinds its role sees."""
    stmt = only_visible_sites(stmt, principal, Alert.site_id)
    if allows(principal.role, Permission.CLINICAL_ALERT_READ):
        return stmt
    return stmt.where(Alert.kind.in_(sorted(VISIT_ALERT_KINDS)))


def only_visible_participants(
    stmt: Select[Any], principal: Principal, participant_id: InstrumentedAttribute[uuid.UUID]
) -> Select[Any]:
    """Narrow ``stmt`` to rows whose ``participant_id`` column is a participant of the caller's
    sites."""
    clause = _sites_clause(principal, Participant.site_id)
    if clause is None:
        return stmt
    return stmt.where(participant_id.in_(select(Participant.id).where(clause)))


def only_visible_studies(
    stmt: Select[Any], principal: Principal, study_id: InstrumentedAttribute[uuid.UUID]
) -> Select[Any]:
    """Narrow ``stmt`` to studies with at least one of the caller's sites."""
    clause = _sites_clause(principal, Site.id)
    if clause is None:
        return stmt
    return stmt.where(study_id.in_(select(Site.study_id).where(clause)))


# --- ids in a request body ----------------------------------------------------------------------


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[{"field": field, "message": message}])


def referenced_site(
    session: Session, principal: Principal, site_id: uuid.UUID, *, study: Study, field: str
) -> Site:
    """A site named in a request body: one of ``study``'s sites that the caller works at. A site
    that does not exist, belongs to another study or lies outside the caller's sites gets one
    and the same 422 naming the field, so the answer says nothing about other sites."""
    site = session.get(Site, site_id)
    if site is None or site.study_id != study.id or not principal.sees_site(site.id):
        raise _field_error(field, f"site {site_id} is not one of your sites in study {study.code}")
    return site


def referenced_visit(
    session: Session, principal: Principal, visit_id: uuid.UUID, *, field: str
) -> Visit:
    """A visit named in a request body; one outside the caller's sites reads as missing."""
    found = _with_site(session, Visit, visit_id)
    if found is None or not principal.sees_site(found[1]):
        raise _field_error(field, f"visit {visit_id} does not exist")
    visit: Visit = found[0]
    return visit


# --- the audit history of one record ------------------------------------------------------------

P = Permission
# The permission that reads each audited table, which the history of a record also needs
# (tests/auth/test_permission_matrix.py checks every audited table is listed). None: the
# signed record's (a signature is read like the record it signs).
RECORD_READ_PERMISSION: dict[str, Permission | None] = {
    "participants": P.PARTICIPANT_READ,
    "visits": P.PARTICIPANT_READ,
    "adverse_events": P.PARTICIPANT_READ,
    "assessments": P.PARTICIPANT_READ,
    "dosing_sessions": P.SESSION_READ,
    "doses": P.SESSION_READ,
    "vital_readings": P.SESSION_READ,
    "therapist_notes": P.NOTE_READ,
    "studies": P.STUDY_READ,
    "sites": P.STUDY_READ,
    "protocol_versions": P.STUDY_READ,
    "users": P.USER_MANAGE,
    "access_tokens": P.USER_MANAGE,
    "notification_subscriptions": P.NOTIFICATION_MANAGE,
    "alerts": P.ALERT_READ,
    "signatures": None,
}
_MODEL_OF_TABLE: dict[str, type] = {
    model.__tablename__: model  # type: ignore[attr-defined]
    for model in (
        *_WITH_SITE,
        Study,
        ProtocolVersion,
        User,
        AccessToken,
        NotificationSubscription,
        Signature,
    )
}


def check_record_readable(
    session: Session, principal: Principal, entity_type: str, entity_id: uuid.UUID
) -> None:
    """403 if the caller's role may not read records of this type; 404 if the record is not
    one the caller can see (missing, or at another site)."""
    missing = NotFound(f"no {entity_type} record {entity_id} exists")
    permission = RECORD_READ_PERMISSION[entity_type]
    if permission is not None and not allows(principal.role, permission):
        raise Forbidden(f"{with_article(principal.role.value)} may not read {entity_type} records")
    model = _MODEL_OF_TABLE[entity_type]
    if model in _WITH_SITE:
        found = _with_site(session, model, entity_id)
        if found is None or not _sees(principal, found[0], found[1]):
            raise missing
    elif model is Study:
        if session.get(Study, entity_id) is None or not study_visible(
            session, principal, entity_id
        ):
            raise missing
    elif model is Signature:
        signature = session.get(Signature, entity_id)
        if signature is None or signature.entity_type not in RECORD_READ_PERMISSION:
            raise missing
        try:
            check_record_readable(session, principal, signature.entity_type, signature.entity_id)
        except NotFound:
            raise missing from None


def site_of_record(session: Session, entity_type: str, entity_id: uuid.UUID) -> uuid.UUID | None:
    """The site a record of an audited table belongs to (a signature: its signed record's), or
    None for a record of no site (a study, a user) or one that does not exist. For showing
    times in the site's clock: it checks nothing."""
    model = _MODEL_OF_TABLE.get(entity_type)
    if model is Signature:
        signature = session.get(Signature, entity_id)
        if signature is None or signature.entity_type == "signatures":
            return None
        return site_of_record(session, signature.entity_type, signature.entity_id)
    if model not in _WITH_SITE:
        return None
    found = _with_site(session, model, entity_id)
    return None if found is None else found[1]
