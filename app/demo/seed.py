"""The demo study a newcomer sees after `make run`: two sites, eight participants at different
stages, finished dosing sessions with their vitals, and one dosing session in progress now.

Everything goes through the same services as the API, so the demo is audited like real data.
Idempotent: a second run finds the study and changes nothing.
"""

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate
from app.assessments import service as assessments
from app.assessments.schemas import BlindingGuessCreate, CssrsScreenCreate
from app.clock import utcnow
from app.config import get_settings
from app.demo.tablet import DEMO_DEVICE
from app.demo.vitals_curve import observations
from app.dosing import doses
from app.dosing import service as dosing
from app.dosing.schemas import DoseCreate
from app.models import DosingSession, Participant, Site, Study, User, Visit, user_sites
from app.notes import service as notes
from app.notes.schemas import NoteCreate
from app.participants import service as participants
from app.participants.schemas import (
    Enrolment,
    ParticipantCreate,
    ScreenFailure,
    VisitOutcome,
    Withdrawal,
)
from app.permissions import Role
from app.protocols import service as protocols
from app.studies import service as studies
from app.studies.schemas import SiteCreate, StudyCreate
from app.users.service import create_device, create_user
from app.vitals import service as vitals

STUDY_CODE = "DEMO-MAPP"
DEMO_PASSWORD = "vigil-demo-password"  # noqa: S105 - dev-only demo accounts


# The demo's people, one of every role (username, printed name, role, codes of their sites).
DEMO_PEOPLE: tuple[tuple[str, str, Role, tuple[str, ...]], ...] = (
    ("coordinator", "Casey Coordinator", Role.COORDINATOR, ("S01", "S02")),
    ("therapist1", "Tess Ortega", Role.THERAPIST, ("S01",)),
    ("therapist2", "Sam Whitfield", Role.THERAPIST, ("S01",)),
    ("therapist3", "Priya Raman", Role.THERAPIST, ("S02",)),
    ("therapist4", "Jonah Beck", Role.THERAPIST, ("S02",)),
    ("clinician1", "Dr. Lena Park", Role.CLINICIAN, ("S01",)),
    ("clinician2", "Dr. Omar Haddad", Role.CLINICIAN, ("S02",)),
    ("pharmacist", "Nia Okafor", Role.PHARMACIST, ("S01", "S02")),
    ("monitor", "Dr. Ruth Adler", Role.MEDICAL_MONITOR, ()),
    ("sponsor", "Grace Lindqvist", Role.SPONSOR, ()),
    ("admin", "Vigil Admin", Role.ADMIN, ()),
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    sites: tuple[str, ...]  # codes; none for the roles that see every site

    def line(self) -> str:
        return f"    {self.username:<12} {self.role:<16} {', '.join(self.sites) or 'all sites'}"


@dataclass
class DemoSummary:
    study_code: str
    created: bool
    participants: list[tuple[str, str, str]] = field(default_factory=list)
    live_session_id: uuid.UUID | None = None
    accounts: list[DemoAccount] = field(default_factory=list)  # people, with DEMO_PASSWORD
    devices: list[DemoAccount] = field(default_factory=list)  # no password: device tokens
    password: str = DEMO_PASSWORD

    def lines(self) -> list[str]:
        head = "seeded" if self.created else "already present (unchanged)"
        out = [f"demo study {self.study_code}: {head}"]
        out += [f"  {site}  {subject}  {status}" for site, subject, status in self.participants]
        if self.live_session_id:
            out.append(f"  dosing session in progress: {self.live_session_id}")
        if self.accounts:
            out.append(f"  demo accounts, each with the password {self.password}:")
            out += [account.line() for account in self.accounts]
        if self.devices:
            out.append(
                "  demo device (no password; `vigil serve --demo-tablet` gives it a device "
                "token per run):"
            )
            out += [device.line() for device in self.devices]
        return out


def _summary(session: Session, study: Study, created: bool) -> DemoSummary:
    rows = session.execute(
        select(Site.code, Participant.subject_id, Participant.status)
        .join(Site, Site.id == Participant.site_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.subject_id)
    ).all()
    live = session.scalar(
        select(DosingSession.id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .where(Participant.study_id == study.id, DosingSession.status == "in_progress")
    )
    seeded = [username for username, *_ in DEMO_PEOPLE] + [DEMO_DEVICE]
    found = session.execute(
        select(User.username, User.role, Site.code)
        .outerjoin(user_sites, user_sites.c.user_id == User.id)
        .outerjoin(Site, (Site.id == user_sites.c.site_id) & (Site.study_id == study.id))
        .where(User.username.in_(seeded))
        .order_by(User.username, Site.code)
    ).all()
    sites: dict[tuple[str, str], list[str]] = {}
    for username, role, site_code in found:
        codes = sites.setdefault((username, role), [])
        if site_code is not None:
            codes.append(site_code)
    accounts = [DemoAccount(name, role, tuple(codes)) for (name, role), codes in sites.items()]
    return DemoSummary(
        STUDY_CODE,
        created,
        [(r[0], r[1], r[2]) for r in rows],
        live,
        accounts=[a for a in accounts if a.role != Role.DEVICE],
        devices=[a for a in accounts if a.role == Role.DEVICE],
    )


class _Builder:
    def __init__(self, session: Session, today: date, now: datetime) -> None:
        self.session, self.today, self.now = session, today, now
        self.rng = random.Random(20261125)  # noqa: S311 - reproducible demo data

    def user(self, username: str, name: str, role: Role, sites: list[Site]) -> User:
        return create_user(
            self.session,
            username=username,
            display_name=name,
            role=role,
            password=DEMO_PASSWORD,
            site_ids=[s.id for s in sites],
        )

    def participant(
        self,
        study: Study,
        site: Site,
        subject: str,
        age: int,
        sex: str,
        enrolled_days_ago: int | None,
    ) -> Participant:
        consented = self.today - timedelta(days=(enrolled_days_ago or 0) + 7)
        p = participants.create(
            self.session,
            study,
            ParticipantCreate(
                site_id=site.id, subject_id=subject, sex=sex, age_years=age, consented_on=consented
            ),
        )
        if enrolled_days_ago is not None:
            participants.enrol(
                self.session,
                p,
                Enrolment(enrolled_on=self.today - timedelta(days=enrolled_days_ago)),
            )
        return p

    def visit(self, p: Participant, code: str) -> Visit:
        visit = self.session.scalar(
            select(Visit).where(Visit.participant_id == p.id, Visit.code == code)
        )
        assert visit is not None
        return visit

    def complete_past_visits(self, p: Participant) -> None:
        for v in participants.visits_of(self.session, p):
            if v.scheduled_on < self.today and v.status == "scheduled":
                participants.record_outcome(
                    self.session, v, VisitOutcome(status="completed", occurred_on=v.scheduled_on)
                )

    def dosing_session(
        self,
        p: Participant,
        code: str,
        therapists: tuple[User, User],
        clinician: User,
        start: datetime,
        *,
        initial_mg: float,
        supplemental: bool,
        finished: bool,
    ) -> DosingSession:
        ds = dosing.create_session(self.session, p, self.visit(p, code))
        dosing.start(self.session, ds, start)
        dosing.attest_therapists(
            self.session,
            ds,
            therapists[0].id,
            therapists[1].id,
            start,
            "demo data: both therapists in the room at the start",
        )
        dosed_at = start + timedelta(minutes=20)
        self.readings(ds, start + timedelta(minutes=5), dosed_at, count=1)
        doses.record_dose(
            self.session,
            ds,
            DoseCreate(kind="initial", amount_mg=initial_mg, administered_at=dosed_at),
        )
        end = start + timedelta(hours=8) if finished else self.now
        minutes = int((end - dosed_at).total_seconds() // 60)
        count = max(0, minutes // 30)
        if supplemental:
            # quiet readings up to the dose, received as they were taken (the dose gate judges
            # the dose on what Vigil knew when it was given), so the gate has fresh vitals
            self.readings(
                ds,
                dosed_at + timedelta(minutes=30),
                dosed_at,
                3,
                excursion_chance=0,
                received_at=dosed_at + timedelta(minutes=91),
            )
            doses.record_dose(
                self.session,
                ds,
                DoseCreate(
                    kind="supplemental",
                    amount_mg=initial_mg / 2,
                    administered_at=dosed_at + timedelta(minutes=105),
                ),
            )
            self.readings(ds, dosed_at + timedelta(minutes=120), dosed_at, max(0, count - 3))
        else:
            self.readings(ds, dosed_at + timedelta(minutes=30), dosed_at, count)
        if finished:
            dosing.attest_baseline(
                self.session,
                ds,
                clinician.id,
                end - timedelta(minutes=5),
                "Vitals back within 10% of the pre-dose values; participant settled.",
            )
            dosing.end(self.session, ds, end, None)
        return ds

    def readings(
        self,
        ds: DosingSession,
        first: datetime,
        dosed_at: datetime,
        count: int,
        *,
        excursion_chance: float = 0.05,
        received_at: datetime | None = None,
    ) -> None:
        batch = []
        for i in range(count):
            at = first + timedelta(minutes=30 * i)
            batch.append(
                {
                    "id": str(uuid.uuid4()),
                    "measured_at": at.isoformat(),
                    "observations": observations(
                        (at - dosed_at).total_seconds() / 60,
                        self.rng,
                        excursion_chance=excursion_chance,
                    ),
                }
            )
        if batch:
            vitals.ingest_batch(self.session, ds, batch, "demo-seed", received_at=received_at)


def seed_demo(session: Session) -> DemoSummary:
    settings = get_settings()
    if settings.environment not in {"dev", "test"}:
        raise RuntimeError("the demo study is seeded only when VIGIL_ENVIRONMENT is dev or test")
    existing = session.scalar(select(Study).where(Study.code == STUDY_CODE))
    if existing is not None:
        return _summary(session, existing, created=False)
    protocols.load_directory(session, settings.protocols_dir)

    now = utcnow().replace(microsecond=0)
    b = _Builder(session, now.date(), now)
    study = studies.create_study(
        session,
        StudyCreate(
            code=STUDY_CODE,
            name="Demo: MDMA-assisted therapy for PTSD (phase 3 design)",
            protocol_key="mdma-ptsd-phase3",
        ),
    )
    boulder = studies.create_site(
        session, study, SiteCreate(code="S01", name="Boulder clinic", timezone="America/Denver")
    )
    charleston = studies.create_site(
        session,
        study,
        SiteCreate(code="S02", name="Charleston clinic", timezone="America/New_York"),
    )
    sites = {"S01": boulder, "S02": charleston}
    people = {
        username: b.user(username, name, role, [sites[code] for code in codes])
        for username, name, role, codes in DEMO_PEOPLE
    }
    t1, t2, t3, t4 = (people[f"therapist{n}"] for n in range(1, 5))
    c1, c2 = people["clinician1"], people["clinician2"]
    # The bedside tablet of the live session: a device account with no usable password; `vigil
    # serve --demo-tablet` gives it a fresh device token each time (app/demo/tablet.py).
    create_device(session, DEMO_DEVICE, boulder.id)

    # Boulder: one at each early stage, and the participant dosed right now.
    b.participant(study, boulder, "01-001", 34, "F", None)
    failed = b.participant(study, boulder, "01-002", 52, "M", None)
    participants.screen_fail(
        session,
        failed,
        ScreenFailure(
            reason_code="exclusion_criteria_met",
            reason_text="Uncontrolled hypertension at screening",
        ),
    )
    enrolled = b.participant(study, boulder, "01-003", 29, "F", 5)
    b.complete_past_visits(enrolled)
    randomised = b.participant(study, boulder, "01-004", 45, "M", 20)
    participants.randomise(session, randomised)
    b.complete_past_visits(randomised)
    live = b.participant(study, boulder, "01-005", 38, "F", 24)
    participants.randomise(session, live)
    b.complete_past_visits(live)
    live_session = b.dosing_session(
        live,
        "EXP1",
        (t1, t2),
        c1,
        now - timedelta(minutes=95),
        initial_mg=80,
        supplemental=False,
        finished=False,
    )

    # Charleston: one past its first dosing session, one withdrawn, one finished the treatment.
    dosed = b.participant(study, charleston, "02-001", 41, "M", 40)
    participants.randomise(session, dosed)
    exp1 = b.visit(dosed, "EXP1").scheduled_on
    first = b.dosing_session(
        dosed,
        "EXP1",
        (t3, t4),
        c2,
        datetime.combine(exp1, datetime.min.time(), now.tzinfo) + timedelta(hours=14),
        initial_mg=80,
        supplemental=True,
        finished=True,
    )
    b.complete_past_visits(dosed)
    first_start = first.started_at or now
    adverse_events.create(
        session,
        dosed,
        AdverseEventCreate(
            verbatim_term="Headache",
            onset_at=first_start + timedelta(hours=3),
            end_at=first_start + timedelta(hours=7),
            severity="mild",
            ctcae_grade=1,
            relatedness="probable",
            expectedness="expected",
            action_taken="dose_not_changed",
            outcome="recovered",
            dosing_session_id=first.id,
        ),
    )
    notes.create(
        session,
        dosed,
        NoteCreate(
            text="Participant engaged with trauma memories in the second hour; grounding "
            "used twice; calm at close.",
            written_at=first.ended_at,
            author_id=t3.id,
            dosing_session_id=first.id,
        ),
    )
    assessments.create(
        session,
        dosed,
        CssrsScreenCreate(
            kind="cssrs_screen",
            administered_at=first.ended_at,
            recall_period="since_last_visit",
            wish_to_be_dead=False,
            suicidal_thoughts=False,
            suicidal_behaviour=False,
            dosing_session_id=first.id,
        ),
    )
    assessments.create(
        session,
        dosed,
        BlindingGuessCreate(
            kind="blinding_guess",
            administered_at=first.ended_at,
            respondent_role="participant",
            guessed_arm="unsure",
            confidence_pct=40,
            dosing_session_id=first.id,
        ),
    )
    withdrawn = b.participant(study, charleston, "02-002", 27, "F", 15)
    participants.withdraw(
        session,
        withdrawn,
        Withdrawal(reason_code="participant_decision", reason_text="Moving out of state"),
    )
    done = b.participant(study, charleston, "02-003", 56, "F", 150)
    participants.randomise(session, done)
    for code, mg in (("EXP1", 80), ("EXP2", 120), ("EXP3", 120)):
        day = b.visit(done, code).scheduled_on
        b.dosing_session(
            done,
            code,
            (t3, t4),
            c2,
            datetime.combine(day, datetime.min.time(), now.tzinfo) + timedelta(hours=14),
            initial_mg=mg,
            supplemental=True,
            finished=True,
        )
    b.complete_past_visits(done)
    participants.complete(session, done)
    session.flush()
    summary = _summary(session, study, created=True)
    summary.live_session_id = live_session.id
    return summary
