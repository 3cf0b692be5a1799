"""Page 2's rows: the signatures of the session, its adverse events and its notes (who, when,
meaning), the notes' only for a reader of notes; the alert's answers; the attestations."""

from datetime import timedelta

from app.auth.principal import Principal
from app.exports.reports.listing import listing_rows
from app.exports.reports.service import report_for
from app.models import Signature
from app.permissions import Role
from tests.conftest import T0
from tests.exports.reports.conftest import DOSED


def _sign(db, entity_type: str, entity_id, signer: tuple, meaning: str, minutes: int) -> None:
    """A signature row as the signing service leaves it; ``signer``: (printed name, user id)."""
    db.add(
        Signature(
            entity_type=entity_type,
            entity_id=entity_id,
            signer_id=signer[1],
            printed_name=signer[0],
            meaning=meaning,
            signed_at=T0 + timedelta(minutes=minutes),
            record_hash="0" * 64,
        )
    )


def _principal(user, role: Role, site):
    return Principal(user.id, user.username, user.display_name, role, frozenset({site.id}), user.id)


def test_signatures_are_listed_and_a_notes_only_for_readers_of_notes(db, reported):
    a, clinician = reported.site, reported.clinician
    a.note.dosing_session_id = a.adverse_event.dosing_session_id = reported.session.id
    _sign(
        db, "dosing_sessions", reported.session.id, ("Dr. Lena Park", clinician.id), "approval", 500
    )
    _sign(db, "therapist_notes", a.note.id, ("Tess Ortega", a.therapist.id), "authorship", 490)
    _sign(db, "adverse_events", a.adverse_event.id, ("Dr. Lena Park", clinician.id), "review", 495)
    db.flush()
    doctor = _principal(clinician, Role.CLINICIAN, a.site)
    rows = listing_rows(report_for(db, reported.session, doctor))["signatures"]
    assert rows == [
        ["note", "Tess Ortega", "authorship", "2026-02-02 16:10", "valid"],
        ["adverse event", "Dr. Lena Park", "review", "2026-02-02 16:15", "valid"],
        ["dosing session", "Dr. Lena Park", "approval", "2026-02-02 16:20", "valid"],
    ]
    coordinator = _principal(a.therapist, Role.COORDINATOR, a.site)
    rows = listing_rows(report_for(db, reported.session, coordinator))["signatures"]
    assert [row[0] for row in rows] == ["adverse event", "dosing session"]


def test_the_alert_row_says_who_answered_it_and_when(db, reported):
    rows = listing_rows(
        report_for(
            db, reported.session, _principal(reported.clinician, Role.CLINICIAN, reported.site.site)
        )
    )
    (alert,) = [row for row in rows["alerts"] if row[0] == "hypertensive-crisis"]
    acknowledged = (DOSED + timedelta(minutes=45)).strftime("%Y-%m-%d %H:%M")
    assert alert[:3] == ["hypertensive-crisis", "critical", "resolved"]
    assert alert[4] == f"{acknowledged} Clinician S01"
    assert [row[0] for row in rows["attestations"]][:2] == [
        "lead therapist present",
        "co-therapist present",
    ]
    assert rows["attestations"][0][1:] == ["Therapist S01", "2026-02-02 08:00"]
