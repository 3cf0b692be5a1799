"""SUPPAE and SUPPVS: the values Vigil stores that AE and VS have no standard variable for
(SDTMIG 3.4 section 8.4), one row per value, tied to its parent rows by IDVAR/IDVARVAL.

SUPPAE (IDVAR AESEQ, the parent's number, so the two always agree):
- AETERM1, AETERM2, ...: the rest of an AETERM over 200 characters (``long_text``); AETERM and
  its continuations joined are the verbatim term exactly.
- AETOXVER: the CTCAE version of AETOXGR, for a graded event (Vigil stores it per event).
- MEDDRVER: the MedDRA version a coded event was coded with (it can differ between events
  coded before and after a dictionary upgrade).
The timing of an event against its dosing session is standard (AESTRTPT/AESTTPT in AE).

SUPPVS (IDVAR VSSPID: the reading, so every test row of it):
- VSRCVDTC: when the server received a *late* reading, one received more than its protocol's
  ``vitals_schedule.late_after_minutes`` after it was measured (a tablet that was offline).
- VSOXYSUP: whether the participant was on supplemental oxygen, when recorded with the reading.
Not exported: the reading's ``source`` (a device name or the user who entered it: a person's
name has no place in an analysis export) and NEWS2's new confusion (not a vital-sign qualifier).

QORIG uses Define-XML 2.1 origin types: Collected (entered or captured at the site), Assigned
(given by a coder). Records entered in error have no qualifiers (and are counted).
"""

import uuid
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.exports.sdtm import long_text
from app.exports.sdtm.rows import (
    VALID,
    ExportCounts,
    Row,
    local_dtc,
    numbered_adverse_events,
    usubjid,
)
from app.models import DosingSession, Participant, Site, Study, VitalReading
from app.protocols.service import definition_of

COLLECTED, ASSIGNED = "Collected", "Assigned"
AETERM_LABEL = "Reported Term for the Adverse Event"


def _qualifier(
    study: Study, domain: str, subject_id: str, idvar: str, idval: str, *value: str
) -> Row:
    qnam, qlabel, qval, qorig = value
    return (study.code, domain, usubjid(study.code, subject_id), idvar, idval, qnam, qlabel,
            qval, qorig, "")  # fmt: skip


def suppae_rows(
    session: Session, study: Study, unblinded: bool, counts: ExportCounts
) -> Iterator[Row]:
    for numbered in numbered_adverse_events(session, study, counts):
        event, seq = numbered.event, str(numbered.seq)
        found: list[tuple[str, str, str, str]] = [
            (f"AETERM{number}", f"{AETERM_LABEL} {number}", part, COLLECTED)
            for number, part in enumerate(long_text.split(event.verbatim_term)[1:], start=1)
        ]
        if event.ctcae_grade is not None and event.ctcae_version:
            found.append(("AETOXVER", "CTCAE Version", event.ctcae_version, COLLECTED))
        if event.coded and event.meddra_version:
            found.append(("MEDDRVER", "MedDRA Version", event.meddra_version, ASSIGNED))
        for value in found:
            counts.rows += 1
            yield _qualifier(study, "AE", numbered.subject_id, "AESEQ", seq, *value)


def _late_after(
    session: Session, version_id: uuid.UUID, cache: dict[uuid.UUID, timedelta]
) -> timedelta:
    """The protocol version's lateness tolerance (vitals_schedule.late_after_minutes)."""
    late = cache.get(version_id)
    if late is None:
        minutes = definition_of(session, version_id).vitals_schedule.late_after_minutes
        late = cache[version_id] = timedelta(minutes=minutes)
    return late


def suppvs_rows(
    session: Session, study: Study, unblinded: bool, counts: ExportCounts
) -> Iterator[Row]:
    statement = (
        select(
            Participant.subject_id,
            Site.timezone,
            VitalReading.id,
            VitalReading.measured_at,
            VitalReading.received_at,
            VitalReading.supplemental_oxygen,
            VitalReading.record_status,
            DosingSession.protocol_version_id,
        )
        .join(DosingSession, DosingSession.id == VitalReading.dosing_session_id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id, VitalReading.received_at, VitalReading.id)
    )
    lateness: dict[uuid.UUID, timedelta] = {}
    for row in session.execute(statement.execution_options(yield_per=2000)):
        subject_id, zone, reading_id, measured_at, received_at, oxygen, status, version = row
        if status != VALID:
            counts.entered_in_error += 1
            continue
        found: list[tuple[str, str, str, str]] = []
        if received_at - measured_at > _late_after(session, version, lateness):
            received = local_dtc(received_at, zone)
            found.append(("VSRCVDTC", "Date/Time Received by Server", received, COLLECTED))
        if oxygen is not None:
            found.append(("VSOXYSUP", "On Supplemental Oxygen", "Y" if oxygen else "N", COLLECTED))
        for value in found:
            counts.rows += 1
            yield _qualifier(study, "VS", subject_id, "VSSPID", str(reading_id), *value)
