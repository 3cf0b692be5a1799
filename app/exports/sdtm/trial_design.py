"""The planned design of a trial (SDTM trial elements, arms, epochs), derived from its protocol:
no database, no settings of its own.

The protocol's visits, in order, fall into the elements of the design by their kind:

============  ==========================  ===========  ===============================
ETCD          element                     epoch        visit kinds
============  ==========================  ===========  ===============================
SCRN          Screening                   SCREENING    screening
PREP          Preparatory therapy         TREATMENT    preparatory
(arm code)    (arm label)                 TREATMENT    experimental, integration
FU            Follow-up                   FOLLOW-UP    outcome, follow_up
============  ==========================  ===========  ===============================

The treatment element is the one that differs by arm: one per arm, coded with the arm's code and
named with its label, starting at the participant's first dose. An element whose kinds have no
visit in the protocol is left out. Its planned duration (TEDUR) is the days from its first visit
to the first visit of the next element (the last: to its own last visit).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from app.protocols.schema import Protocol, VisitDefinition

SCREENING, TREATMENT, FOLLOW_UP = "SCREENING", "TREATMENT", "FOLLOW-UP"
EPOCHS = (SCREENING, TREATMENT, FOLLOW_UP)
CONSENT_RULE = "Informed consent"
TREATMENT_KINDS = frozenset({"experimental", "integration"})


@dataclass(frozen=True)
class _Group:
    code: str | None  # None: the arm's own (treatment) element
    name: str
    epoch: str
    kinds: frozenset[str]


_GROUPS = (
    _Group("SCRN", "Screening", SCREENING, frozenset({"screening"})),
    _Group("PREP", "Preparatory therapy", TREATMENT, frozenset({"preparatory"})),
    _Group(None, "", TREATMENT, TREATMENT_KINDS),
    _Group("FU", "Follow-up", FOLLOW_UP, frozenset({"outcome", "follow_up"})),
)


@dataclass(frozen=True)
class Element:
    code: str  # ETCD
    name: str  # ELEMENT
    epoch: str
    kinds: frozenset[str]  # the kinds of visit held in it
    start_rule: str  # TESTRL
    end_rule: str  # TEENRL
    duration: str  # TEDUR, ISO 8601 (P21D), '' when not planned in days
    arm_code: str | None = None  # set on the element that differs by arm

    @property
    def by_arm(self) -> bool:
        return self.arm_code is not None


@dataclass(frozen=True)
class Arm:
    code: str
    label: str
    elements: tuple[Element, ...]  # in the order of the arm (TAETORD 1, 2, ...)

    def order_of(self, element_code: str) -> int:
        """TAETORD of an element of this arm."""
        return next(i for i, e in enumerate(self.elements, 1) if e.code == element_code)


@dataclass(frozen=True)
class Design:
    arms: tuple[Arm, ...]

    @property
    def elements(self) -> tuple[Element, ...]:
        """Every element once: the common ones, then each arm's own, in the order of the arms."""
        seen: dict[str, Element] = {}
        for arm in self.arms:
            for element in arm.elements:
                seen.setdefault(element.code, element)
        common = [e for e in seen.values() if not e.by_arm]
        by_arm = [e for e in seen.values() if e.by_arm]
        return (*common, *by_arm)

    def arm(self, code: str | None) -> Arm | None:
        return next((arm for arm in self.arms if arm.code == code), None)

    def common_path(self) -> tuple[Element, ...]:
        """The elements every arm shares, in arm order (what a participant without an arm has)."""
        return tuple(e for e in self.arms[0].elements if not e.by_arm)


def epoch_of_kind(kind: str) -> str:
    """The epoch a visit of ``kind`` is in."""
    return next((group.epoch for group in _GROUPS if kind in group.kinds), TREATMENT)


def _visits_of(visits: Sequence[VisitDefinition], kinds: frozenset[str]) -> list[VisitDefinition]:
    return [visit for visit in visits if visit.kind in kinds]


def _start_rule(group: _Group, first: VisitDefinition) -> str:
    if group.code == "SCRN":
        return CONSENT_RULE
    if group.code is None:
        return f"First dose of study treatment, at {first.name} ({first.code})"
    return f"Start of {first.name} ({first.code})"


def _days(days: int) -> str:
    return f"P{days}D" if days > 0 else ""


def design_of(protocol: Protocol) -> Design:
    """The trial design of ``protocol``: its arms, each a sequence of elements."""
    planned = [
        (group, visits)
        for group in _GROUPS
        if (visits := _visits_of(protocol.visits, group.kinds)) or group.code is None
    ]
    starts = [
        _start_rule(group, visits[0]) if visits else "First dose of study treatment"
        for group, visits in planned
    ]
    arms = []
    for arm in protocol.arms:
        elements = []
        for index, (group, visits) in enumerate(planned):
            last = index + 1 == len(planned)
            if last:
                end = f"End of {visits[-1].name} ({visits[-1].code})" if visits else ""
                span = visits[-1].day - visits[0].day if visits else 0
            else:
                end = starts[index + 1]
                following = planned[index + 1][1]
                span = following[0].day - visits[0].day if visits and following else 0
            elements.append(
                Element(
                    code=group.code or arm.code,
                    name=group.name or arm.label,
                    epoch=group.epoch,
                    kinds=group.kinds,
                    start_rule=starts[index],
                    end_rule=end,
                    duration=_days(span),
                    arm_code=None if group.code else arm.code,
                )
            )
        arms.append(Arm(arm.code, arm.label, tuple(elements)))
    return Design(tuple(arms))
