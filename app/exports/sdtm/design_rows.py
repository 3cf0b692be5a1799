"""Row builders of the trial design datasets (TS, TA, TE, TV) and of the subject-level datasets
made from them (SV, SE), in the order of their variables (``metadata``).

TS, TA, TE and TV describe the plan: the current (latest) version of the study's protocol,
through ``trial_design``. SV lists the visits a participant attended: completed ones, and the
dosing visits whose session has started; a row is the stored visit of USUBJID with that VISITNUM
(visits are numbered in protocol order, unique per participant), so it traces to its record
without a --SPID, which SV does not have. SE lists the elements a participant actually
traversed: screening from consent, each later common element from the first visit of it they
attended, the treatment element from their first valid dose; an element ends where the next
one starts, the last one (of a participant no longer in the trial) with its last visit. SESEQ
is the element's order in the arm (TAETORD), so it never changes as a participant goes on.

Blinding: the treatment element differs by arm, so for a blinded reader its ETCD and ELEMENT
are masked in SE, TA and TE, as are TA's ARMCD, ARM and TABRANCH; TA and TE rows that masking
makes identical are written once (a blinded TA shows one masked arm).
"""

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.auth.blinding import MASKED
from app.exports.sdtm import trial_design
from app.exports.sdtm.rows import BATCH, VALID, ExportCounts, Row, local_dtc, usubjid
from app.exports.sdtm.trial_design import Design, Element, design_of
from app.models import Dose, DosingSession, Participant, ProtocolVersion, Site, Study, Visit
from app.protocols.schema import TRIAL_PHASES, Protocol
from app.protocols.service import definition_of

SDTMIG_VERSION, SDTM_VERSION = "3.4", "2.0"
CDISC_CT = "CDISC CT"
NO_INFORMATION = "NI"
TSVAL_LENGTH = 200
SNOMED = "SNOMED"
# Trial summary parameters from the protocol's optional ``trial`` section: one the protocol does
# not give is written with TSVALNF NI, and listed in the package manifest as a conformance gap.
TRIAL_FACTS = {
    "INDIC": "Trial Disease/Condition Indication",
    "TPHASE": "Trial Phase Classification",
    "SPONSOR": "Clinical Study Sponsor",
    "PLANSUB": "Planned Number of Subjects",
}
_ENDED = frozenset({"completed", "withdrawn", "screen_failed"})


def current_protocol(session: Session, study: Study) -> Protocol:
    """The latest version of the study's protocol: the plan TS, TA, TE and TV describe."""
    version_id = session.scalar(
        select(ProtocolVersion.id)
        .where(ProtocolVersion.protocol_key == study.protocol_key)
        .order_by(ProtocolVersion.sequence.desc())
        .limit(1)
    )
    if version_id is None:  # pragma: no cover - a study is created under a loaded protocol
        raise LookupError(f"no protocol {study.protocol_key!r} is loaded")
    return definition_of(session, version_id)


def _distinct(rows: Iterable[Row], counts: ExportCounts) -> Iterator[Row]:
    seen: set[Row] = set()
    for row in rows:
        if row not in seen:
            seen.add(row)
            counts.rows += 1
            yield row


# --- trial design -------------------------------------------------------------------------------


TS_PARAMETERS = {  # TSPARMCD: TSPARM, in the order of the rows; PROTID and PROTVER are Vigil's
    "TITLE": "Trial Title",
    "PROTID": "Protocol Identifier",
    "PROTVER": "Protocol Version",
    "STYPE": "Study Type",
    "RANDOM": "Trial is Randomized",
    "TBLIND": "Trial Blinding Schema",
    "TCNTRL": "Control Type",
    "NARMS": "Planned Number of Arms",
    "TRT": "Investigational Therapy or Treatment",
    "ROUTE": "Route of Administration",
    "DOSU": "Dose Units",
    "ACTSUB": "Actual Number of Subjects",
    "SDTIGVER": "SDTM IG Version",
    "SDTMVER": "SDTM Version",
    **TRIAL_FACTS,
}


def _trial_facts(protocol: Protocol) -> dict[str, tuple[str, str]]:
    """{TSPARMCD: (TSVAL, TSVALCD)} of the parameters the protocol's ``trial`` section gives."""
    trial = protocol.trial
    if trial is None:
        return {}
    facts: dict[str, tuple[str, str]] = {}
    if trial.indication is not None:
        facts["INDIC"] = (trial.indication.text, trial.indication.snomed_ct or "")
    if trial.phase is not None:
        facts["TPHASE"] = (trial.phase.value, TRIAL_PHASES[trial.phase.value])
    if trial.sponsor is not None:
        facts["SPONSOR"] = (trial.sponsor.name, "")
    if trial.planned_subjects is not None:
        facts["PLANSUB"] = (str(trial.planned_subjects.value), "")
    return facts


def missing_trial_facts(session: Session, study: Study) -> list[str]:
    """The TSPARMCDs of the trial facts the study's current protocol does not give."""
    given = _trial_facts(current_protocol(session, study))
    return [code for code in TRIAL_FACTS if code not in given]


def _summary(session: Session, study: Study, protocol: Protocol) -> dict[str, tuple[str, str]]:
    """{TSPARMCD: (TSVAL, TSVALCD)} of each parameter the protocol and the records give.
    TBLIND: arms are masked from every role but the unblinded ones (participants, therapists,
    clinicians, the sponsor), so a trial of two or more arms is double blind; TCNTRL: placebo
    when an arm's label names one."""
    info, arms = protocol.protocol, protocol.arms
    placebo = any("placebo" in arm.label.lower() for arm in arms)
    control = (
        ("PLACEBO", "C49648") if placebo else ("ACTIVE", "") if len(arms) > 1 else ("NONE", "")
    )
    enrolled = session.scalar(
        select(func.count())
        .select_from(Participant)
        .where(Participant.study_id == study.id, Participant.enrolled_on.is_not(None))
    )
    randomised = protocol.randomisation is not None
    return {
        "TITLE": (info.title, ""),
        "PROTID": (info.id, ""),
        "PROTVER": (info.version, ""),
        "STYPE": ("INTERVENTIONAL", "C98388"),
        "RANDOM": ("Y", "C49488") if randomised else ("N", "C49487"),
        "TBLIND": ("DOUBLE BLIND", "C15228") if len(arms) > 1 else ("OPEN LABEL", "C49659"),
        "TCNTRL": control,
        "NARMS": (str(len(arms)), ""),
        "TRT": (info.drug.name, ""),
        "ROUTE": (info.drug.route.upper(), ""),
        "DOSU": (info.drug.unit, ""),
        "ACTSUB": (str(enrolled or 0), ""),
        "SDTIGVER": (SDTMIG_VERSION, ""),
        "SDTMVER": (SDTM_VERSION, ""),
        **_trial_facts(protocol),
    }


def ts_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per trial summary parameter; those the protocol does not hold carry TSVALNF. A
    coded value names its terminology: SNOMED CT for the indication, CDISC CT otherwise (the
    version of neither is recorded, so TSVCDVER is empty)."""
    values = _summary(session, study, current_protocol(session, study))
    for code, name in TS_PARAMETERS.items():
        value, value_code = values.get(code, ("", ""))
        counts.rows += 1
        yield (
            study.code,
            "TS",
            1,
            code,
            name,
            value[:TSVAL_LENGTH],  # a longer title is cut (TSVAL1, TSVAL2 ... are not written)
            "" if code in values else NO_INFORMATION,
            value_code,
            (SNOMED if code == "INDIC" else CDISC_CT) if value_code else "",
            "",
        )


def _element_shown(element: Element, unblinded: bool) -> tuple[str, str]:
    if element.by_arm and not unblinded:
        return MASKED, MASKED
    return element.code, element.name


def ta_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per element of each arm; TABRANCH on the element after which the arms part."""
    design = design_of(current_protocol(session, study))

    def planned() -> Iterator[Row]:
        for arm in design.arms:
            code, label = (arm.code, arm.label) if unblinded else (MASKED, MASKED)
            for order, element in enumerate(arm.elements, start=1):
                following = arm.elements[order] if order < len(arm.elements) else None
                branch = ""
                if following is not None and following.by_arm and len(design.arms) > 1:
                    branch = f"Randomised to {arm.label}" if unblinded else MASKED
                etcd, name = _element_shown(element, unblinded)
                yield (study.code, "TA", code, label, order, etcd, name, branch, "", element.epoch)

    yield from _distinct(planned(), counts)


def te_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per element of the design (the treatment elements masked for a blinded reader)."""
    design = design_of(current_protocol(session, study))
    yield from _distinct(
        (
            (
                study.code,
                "TE",
                *_element_shown(element, unblinded),
                element.start_rule,
                element.end_rule,
                element.duration,
            )
            for element in design.elements
        ),
        counts,
    )


def _visit_start_rule(day: int, before: int, after: int) -> str:
    when = "Day of enrolment" if day == 0 else f"Day {day} after enrolment"
    if before == after == 0:
        return f"{when} (no window)"
    return f"{when} (window {before} days before to {after} days after)"


def tv_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per planned visit, the same in every arm (ARMCD empty)."""
    for number, visit in enumerate(current_protocol(session, study).visits, start=1):
        counts.rows += 1
        yield (
            study.code,
            "TV",
            float(number),
            visit.name,
            "",
            _visit_start_rule(visit.day, visit.window.before, visit.window.after),
            f"{visit.duration_minutes} minutes after the start of the visit",
        )


# --- the subjects' visits and elements ----------------------------------------------------------


def _attended() -> Any:
    """The visits a participant attended, with their dosing session's start and end."""
    return (
        select(
            Visit.participant_id,
            Visit.sequence,
            Visit.name,
            Visit.kind,
            Visit.occurred_on,
            DosingSession.started_at,
            DosingSession.ended_at,
        )
        .outerjoin(DosingSession, DosingSession.visit_id == Visit.id)
        .where(or_(Visit.status == "completed", DosingSession.started_at.is_not(None)))
    )


def _on(day: date | None) -> str:
    return day.isoformat() if day is not None else ""


def _visit_start(occurred_on: date | None, started_at: datetime | None, zone: str) -> str:
    return local_dtc(started_at, zone) if started_at is not None else _on(occurred_on)


def _visit_end(
    occurred_on: date | None, started: datetime | None, ended: datetime | None, zone: str
) -> str:
    if started is not None:
        return local_dtc(ended, zone)  # '' while the session goes on
    return _on(occurred_on)


def sv_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per visit a participant attended, in visit order."""
    attended = _attended().subquery()
    statement = (
        select(Participant.subject_id, Site.timezone, attended)
        .join(Site, Site.id == Participant.site_id)
        .join(attended, attended.c.participant_id == Participant.id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id, attended.c.sequence)
    )
    streamed = session.execute(statement.execution_options(yield_per=BATCH))
    for subject_id, zone, _pid, number, name, kind, occurred_on, started, ended in streamed:
        counts.rows += 1
        yield (
            study.code,
            "SV",
            usubjid(study.code, subject_id),
            float(number),
            name,
            trial_design.epoch_of_kind(kind),
            _visit_start(occurred_on, started, zone),
            _visit_end(occurred_on, started, ended, zone),
        )


@dataclass(frozen=True)
class _Attendance:
    kind: str
    start: str
    end: str


def _path(design: Design, arm_code: str | None) -> tuple[Element, ...]:
    """The elements a participant of ``arm_code`` goes through (a participant without an arm:
    the common ones); an arm the current protocol no longer has keeps its code as the element."""
    if arm_code is None:
        return design.common_path()
    arm = design.arm(arm_code)
    if arm is not None:
        return arm.elements
    template = design.arms[0].elements
    return tuple(
        replace(e, code=arm_code, name=arm_code, arm_code=arm_code) if e.by_arm else e
        for e in template
    )


def _traversed(
    path: tuple[Element, ...],
    consented_on: date | None,
    first_dose: str,
    visits: list[_Attendance],
) -> list[tuple[int, Element, str, list[_Attendance]]]:
    """(TAETORD, element, start, its visits) of each element the participant entered."""
    entered = []
    for order, element in enumerate(path, start=1):
        held = [visit for visit in visits if visit.kind in element.kinds]
        if element.by_arm:
            start = first_dose
        elif element.code == "SCRN" and consented_on is not None:
            start = consented_on.isoformat()
        else:
            start = held[0].start if held else ""
        if start:
            entered.append((order, element, start, held))
    return entered


def se_rows(session: Session, study: Study, unblinded: bool, counts: ExportCounts) -> Iterator[Row]:
    """One row per element a participant traversed, in the order of their arm."""
    design = design_of(current_protocol(session, study))
    first_doses = (
        select(DosingSession.participant_id, func.min(Dose.administered_at).label("first_at"))
        .join(Dose, Dose.dosing_session_id == DosingSession.id)
        .where(Dose.record_status == VALID)
        .group_by(DosingSession.participant_id)
        .subquery()
    )
    attended = _attended().subquery()
    statement = (
        select(
            Participant.id,
            Participant.subject_id,
            Participant.arm_code,
            Participant.status,
            Participant.consented_on,
            Site.timezone,
            first_doses.c.first_at,
            attended.c.kind,
            attended.c.occurred_on,
            attended.c.started_at,
            attended.c.ended_at,
        )
        .join(Site, Site.id == Participant.site_id)
        .outerjoin(first_doses, first_doses.c.participant_id == Participant.id)
        .outerjoin(attended, attended.c.participant_id == Participant.id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id, attended.c.sequence)
    )
    streamed = session.execute(statement.execution_options(yield_per=BATCH))
    grouped = itertools.groupby(streamed, key=lambda row: row[0])  # one participant at a time
    for _participant_id, records in grouped:
        rows = list(records)
        _id, subject_id, arm_code, status, consented_on, zone, first_at = rows[0][:7]
        visits = [
            _Attendance(kind, _visit_start(on, started, zone), _visit_end(on, started, ended, zone))
            for *_, kind, on, started, ended in rows
            if kind is not None
        ]
        first_dose = local_dtc(first_at, zone) if arm_code is not None else ""
        entered = _traversed(_path(design, arm_code), consented_on, first_dose, visits)
        for index, (order, element, start, held) in enumerate(entered):
            if index + 1 < len(entered):
                end = entered[index + 1][2]
            else:
                end = held[-1].end if held and status in _ENDED else ""
            etcd, name = _element_shown(element, unblinded)
            counts.rows += 1
            yield (
                study.code,
                "SE",
                usubjid(study.code, subject_id),
                order,
                etcd,
                name,
                order,
                element.epoch,
                start,
                end,
            )


BUILDERS = {
    "SV": sv_rows,
    "SE": se_rows,
    "TS": ts_rows,
    "TA": ta_rows,
    "TE": te_rows,
    "TV": tv_rows,
}
