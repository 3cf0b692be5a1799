"""A finished MDMA dosing session with a few readings, and an amendment of its protocol that
lowers the grade 3 hypertension threshold from SBP 160 to 150 mmHg, for the replay tests.

Records are written straight to the tables (as tests/factories do), so no alert is raised while
building: whatever alert exists afterwards was made by the code under test.
"""

import uuid
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy.orm import Session

from app.models import DosingSession, ProtocolVersion, VitalReading
from app.protocols import service as protocols
from app.protocols.loader import parse_protocol_text
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import MDMA, load_protocol, make_participant, make_site, make_study

AMENDED_LABEL = "1.5-draft"
DOSED_AT = T0 + timedelta(minutes=30)  # 08:30 UTC
ENDED_AT = T0 + timedelta(hours=8)
# SBP 155 at T+60: under 160 (the shipped rule), at or above 150 (the amendment).
ONLY_AMENDED_AT = DOSED_AT + timedelta(minutes=60)  # 09:30 UTC
BOTH_AT = DOSED_AT + timedelta(minutes=120)  # 10:30 UTC, SBP 165


def amended_text() -> str:
    text = MDMA.read_text(encoding="utf-8")
    old_rule = '{measure: SYSBP, op: ">=", value: 160, unit: mmHg}   # [CTCAE] G3 SBP >= 160'
    old_label = 'version: "1.4"'
    assert text.count(old_rule) == 1 and text.count(old_label) == 1
    return text.replace(old_rule, old_rule.replace("160", "150")).replace(
        old_label, f'version: "{AMENDED_LABEL}"'
    )


def load_amendment(db: Session) -> ProtocolVersion:
    """The amendment, loaded through the protocols service as a new version."""
    loaded = parse_protocol_text(amended_text(), source="mdma-ptsd-phase3-amended.yaml")
    version, created = protocols.store(db, loaded)
    assert created or version.version_label == AMENDED_LABEL
    return version


def add_reading(
    db: Session, dosing_session: DosingSession, minutes_after_start: float, **values: float
) -> VitalReading:
    at = T0 + timedelta(minutes=minutes_after_start)
    reading = VitalReading(
        id=uuid.uuid4(),
        dosing_session_id=dosing_session.id,
        measured_at=at,
        received_at=at,
        source="test",
        reported={},
        **values,
    )
    db.add(reading)
    db.flush()
    return reading


def end(db: Session, dosing_session: DosingSession) -> None:
    dosing_session.status = "ended"
    dosing_session.ended_at = ENDED_AT
    db.flush()


def build(db: Session, *, ended: bool = True) -> SimpleNamespace:
    """Study MAPP-T at sites S01 (the session's) and S02; the session ran under the shipped
    MDMA protocol (``own``); ``amended`` is the amendment."""
    own = load_protocol(db)
    study = make_study(db)
    site = make_site(db, study, "S01")
    other_site = make_site(db, study, "S02")
    participant = make_participant(db, site, "01-001", stage="randomised")
    dosing_session = make_dosing_session(
        db, participant, started_at=T0, initial_dose_mg=80, dosed_at=DOSED_AT
    )
    bp = {"sysbp_mmhg": 120.0, "diabp_mmhg": 78.0, "pulse_bpm": 72.0, "temp_c": 36.8}
    baseline = add_reading(db, dosing_session, 20, **bp)
    only_amended = add_reading(
        db, dosing_session, 90, sysbp_mmhg=155, diabp_mmhg=92, pulse_bpm=96, temp_c=37.0
    )
    both = add_reading(
        db, dosing_session, 150, sysbp_mmhg=165, diabp_mmhg=95, pulse_bpm=100, temp_c=37.2
    )
    if ended:
        end(db, dosing_session)
    return SimpleNamespace(
        own=own,
        amended=load_amendment(db),
        study=study,
        site=site,
        other_site=other_site,
        participant=participant,
        dosing_session=dosing_session,
        readings=SimpleNamespace(baseline=baseline, only_amended=only_amended, both=both),
    )
