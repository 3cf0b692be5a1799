"""The read shape of dosing sessions: their doses, total, supplemental window and signatures."""

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.dosing import schemas, service
from app.dosing.schemas import DosingSessionStatus
from app.models import Dose, DosingSession, Participant, Site, Visit
from app.protocols import service as protocols
from app.rules import dose_limits
from app.signatures import service as signatures
from app.signatures.schemas import SignatureRead
from app.time_bounds import local_date

S = DosingSessionStatus


# --- the read shape -----------------------------------------------------------------------------


def present(session: Session, dosing_session: DosingSession) -> schemas.DosingSessionRead:
    return present_many(session, [dosing_session])[0]


def present_many(
    session: Session, dosing_sessions: Sequence[DosingSession]
) -> list[schemas.DosingSessionRead]:
    """The read shape of several sessions, with two queries for all of them."""
    if not dosing_sessions:
        return []
    ids = [ds.id for ds in dosing_sessions]
    doses: dict[uuid.UUID, list[Dose]] = defaultdict(list)
    for dose in session.scalars(
        select(Dose).where(Dose.dosing_session_id.in_(ids)).order_by(Dose.administered_at, Dose.id)
    ):
        doses[dose.dosing_session_id].append(dose)
    visit_ids = {ds.visit_id for ds in dosing_sessions}
    rows = session.execute(
        select(Visit.id, Visit.code, Visit.window_start_on, Site.timezone)
        .join(Participant, Participant.id == Visit.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(Visit.id.in_(visit_ids))
    )
    visits = {row.id: row for row in rows}
    signed = signatures.signatures_of(session, dosing_sessions)
    views = []
    for ds in dosing_sessions:
        visit = visits[ds.visit_id]
        early = ds.started_at is not None and (
            local_date(ds.started_at, visit.timezone) < visit.window_start_on
        )
        views.append(_view(session, ds, visit.code, early, doses[ds.id], signed.get(ds.id, [])))
    return views


def _view(
    session: Session,
    ds: DosingSession,
    visit_code: str,
    started_before_window: bool,
    doses: list[Dose],
    signed: list[SignatureRead],
) -> schemas.DosingSessionRead:
    protocol = protocols.definition_of(session, ds.protocol_version_id)
    definition = protocol.dosing_for_visit(visit_code)
    valid = service.valid_doses(doses)
    window = dose_limits.supplemental_window(definition, valid) if definition else None
    therapists = None
    if ds.lead_therapist_id and ds.co_therapist_id and ds.therapists_present_at:
        therapists = schemas.Therapists(
            lead_therapist_id=ds.lead_therapist_id,
            co_therapist_id=ds.co_therapist_id,
            present_at=ds.therapists_present_at,
        )
    baseline = None
    if ds.baseline_attested_by_id and ds.baseline_attested_at:
        baseline = schemas.BaselineAttestationRead(
            attested_by_id=ds.baseline_attested_by_id,
            attested_at=ds.baseline_attested_at,
            note=ds.baseline_attestation_note,
        )
    return schemas.DosingSessionRead(
        id=ds.id,
        participant_id=ds.participant_id,
        visit_id=ds.visit_id,
        visit_code=visit_code,
        protocol_version_id=ds.protocol_version_id,
        status=S(ds.status),
        started_at=ds.started_at,
        ended_at=ds.ended_at,
        therapists=therapists,
        baseline_attestation=baseline,
        end_reason=ds.end_reason,
        started_before_window=started_before_window,
        drug=protocol.protocol.drug.name,
        doses=[schemas.DoseRead.model_validate(dose) for dose in doses],
        total_mg=sum(dose.amount_mg for dose in valid),
        supplemental_window=(
            schemas.SupplementalWindow(opens_at=window[0], closes_at=window[1]) if window else None
        ),
        created_at=ds.created_at,
        signatures=signed,
    )
