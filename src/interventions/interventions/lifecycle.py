"""The intervention lifecycle as data (SPEC §4.2–4.3): statuses, kinds, and one table of
transitions, each with its sources, its target (or the rule choosing it), the kinds it applies
to, its guards and what it does to a curative intervention's anomalies.

Every status change in the service goes through ``apply``; the ``actions`` flags read
``allows`` (``ACTION_FLAGS`` says which transitions each flag stands for); the history
records each change under its transition's action name; ``GET /interventions/v2/rs/lifecycle``
describes this table (``presenter.lifecycle``). A target or an anomaly move chosen by the
request is a ``Rule``: the function the service calls, and the same choice as data (which
input it reads, which status each value leads to), so that nothing describes it twice.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Generic, TypedDict, TypeVar, Unpack

from interventions.errors import (
    AlreadyCancelled,
    AlreadyCheckedIn,
    AlreadyExecuted,
    AlreadyVerified,
    AppError,
    AttendeesForDrillsOnly,
    LifecycleConflict,
    NotCheckedIn,
    NotExecuted,
    NotForThisKind,
    SignatureMissing,
    WrongPin,
)

S = TypeVar("S", bound=IntEnum)


class Status(IntEnum):
    TO_SCHEDULE = 1
    SCHEDULED = 2
    IN_PROGRESS = 3
    TO_VERIFY = 4
    VALIDATED = 5
    REJECTED = 6
    CANCELLED = 7


class Kind(IntEnum):
    PREVENTIVE = 1
    CURATIVE = 2
    TRAINING = 3


class CreationStatus(IntEnum):
    TO_SCHEDULE = 0
    SCHEDULED = 1
    DONE = 2


class CheckType(IntEnum):
    PLANNED = 1
    UNPLANNED = 2


class Decision(IntEnum):
    ACCEPT = 1
    REJECT = 2


class AnomalyStatus(IntEnum):
    OPEN = 0
    IN_REPAIR = 1
    RESOLVED = 2


class Action(StrEnum):
    """A transition; its value is the action the history records (stored: never renamed)."""

    CREATE = "create"
    AUTO_CREATE = "auto-create"
    UPDATE = "update"
    VALIDATE_TRAINING = "validate"
    CHECK_IN = "check-in"
    EXECUTE = "execute"
    VERIFY = "verify"
    CANCEL = "cancel"
    SEND_INFORMATION = "information-email"


class Inputs(TypedDict, total=False):
    """What a request brings to a transition, for its target rule and its guards."""

    creation_status: int  # creation, update: the creationStatus asked for
    previous_creation_status: int  # update: the intervention's own
    decision: int  # verify
    pin_matches: bool  # check-in
    signed: bool  # execute: a signature is announced
    attendee_count: int | None  # execute


@dataclass(frozen=True)
class Facts:
    """What a target rule or a guard looks at: the intervention as it is, and the inputs."""

    status: Status | None  # None: not created yet
    kind: Kind
    inputs: Inputs


@dataclass(frozen=True)
class Guard:
    """A condition a transition needs besides its source status, and its refusal."""

    name: str
    holds: Callable[[Facts], bool]
    refusal: Callable[[], AppError]


@dataclass(frozen=True)
class Rule(Generic[S]):
    """A target the request chooses, as data and as the function that applies it.

    ``input`` is the request's member it reads (its wire name), ``values`` what each of its
    values leads to; ``keeps`` says that any other case keeps the current status (re-planning
    keeps it unless the creation status changes). ``choose`` is what the service runs.
    """

    name: str
    description: str
    choose: Callable[[Facts], S]
    input: str | None = None
    values: Mapping[int, S] = field(default_factory=dict)
    keeps: bool = False

    def __call__(self, facts: Facts) -> S:
        return self.choose(facts)


@dataclass(frozen=True)
class AnomalyMove:
    """What the transition does to a curative intervention's anomalies: those in ``source``
    move to ``target`` (the others are not this intervention's to move)."""

    source: AnomalyStatus
    target: AnomalyStatus | Rule[AnomalyStatus]


@dataclass(frozen=True)
class Transition:
    action: Action
    past: str  # "… cannot be {past}."
    # None stands for an intervention not created yet.
    sources: frozenset[Status | None]
    target: Status | Rule[Status]
    kinds: frozenset[Kind] = frozenset(Kind)
    guards: tuple[Guard, ...] = ()
    anomalies: AnomalyMove | None = None
    # Why the action is refused in a status when the status's usual reason says it badly.
    refused_as: Mapping[Status, type[LifecycleConflict]] = field(default_factory=dict)


# ``creationStatus`` 0 → to schedule, 1 → scheduled, 2 (done, after the fact) → to verify.
STATUS_FOR_CREATION: Mapping[int, Status] = {
    CreationStatus.TO_SCHEDULE: Status.TO_SCHEDULE,
    CreationStatus.SCHEDULED: Status.SCHEDULED,
    CreationStatus.DONE: Status.TO_VERIFY,
}
STATUS_AFTER_DECISION: Mapping[int, Status] = {
    Decision.ACCEPT: Status.VALIDATED,
    Decision.REJECT: Status.REJECTED,
}
ANOMALIES_AFTER_DECISION: Mapping[int, AnomalyStatus] = {
    Decision.ACCEPT: AnomalyStatus.RESOLVED,
    Decision.REJECT: AnomalyStatus.OPEN,
}


def status_for_creation(creation_status: int) -> Status:
    """``creationStatus`` 0 → to schedule, 1 → scheduled, 2 (done, after the fact) → to verify."""
    return STATUS_FOR_CREATION[CreationStatus(creation_status)]


def status_after_decision(decision: int) -> Status:
    return STATUS_AFTER_DECISION[Decision(decision)]


def _as_created(facts: Facts) -> Status:
    return status_for_creation(facts.inputs["creation_status"])


def _as_replanned(facts: Facts) -> Status:
    """Kept, unless the creation status changes or a rejected intervention is re-planned
    (README "Decisions"): then as at creation."""
    asked = facts.inputs["creation_status"]
    if asked != facts.inputs["previous_creation_status"] or facts.status == Status.REJECTED:
        return status_for_creation(asked)
    assert facts.status is not None
    return facts.status


def _from_decision(facts: Facts) -> Status:
    return status_after_decision(facts.inputs["decision"])


def _unchanged(facts: Facts) -> Status:
    assert facts.status is not None
    return facts.status


def _anomalies_after_decision(facts: Facts) -> AnomalyStatus:
    return ANOMALIES_AFTER_DECISION[Decision(facts.inputs["decision"])]


AS_CREATED = Rule(
    "creationStatus",
    "The status of the requested creationStatus.",
    _as_created,
    input="creationStatus",
    values=STATUS_FOR_CREATION,
)
AS_REPLANNED = Rule(
    "replanning",
    "Kept, unless creationStatus changes or a rejected intervention is re-planned: then the "
    "status of the requested creationStatus.",
    _as_replanned,
    input="creationStatus",
    values=STATUS_FOR_CREATION,
    keeps=True,
)
FROM_DECISION = Rule(
    "decision",
    "The status of the decision: accepted or rejected.",
    _from_decision,
    input="decision",
    values=STATUS_AFTER_DECISION,
)
UNCHANGED = Rule("unchanged", "The status does not change.", _unchanged, keeps=True)
ANOMALIES_BY_DECISION = Rule(
    "decision",
    "Resolved when accepted, open again when rejected.",
    _anomalies_after_decision,
    input="decision",
    values=ANOMALIES_AFTER_DECISION,
)


PIN_MATCHES = Guard("the PIN matches", lambda f: f.inputs.get("pin_matches", False), WrongPin)
SIGNED = Guard("signed", lambda f: f.inputs.get("signed", False), SignatureMissing)
ATTENDEES_FOR_DRILLS = Guard(
    "attendees counted for drills only",
    lambda f: f.inputs.get("attendee_count") is None or f.kind == Kind.TRAINING,
    AttendeesForDrillsOnly,
)

_NEW: frozenset[Status | None] = frozenset({None})
_BEFORE_EXECUTION: frozenset[Status | None] = frozenset({Status.TO_SCHEDULE, Status.SCHEDULED})

TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        # Curative: its anomalies must be open, and are in repair from then on.
        Transition(
            Action.CREATE,
            past="created",
            sources=_NEW,
            target=AS_CREATED,
            anomalies=AnomalyMove(AnomalyStatus.OPEN, AnomalyStatus.IN_REPAIR),
        ),
        # The planner, for a routine's occurrences.
        Transition(
            Action.AUTO_CREATE,
            past="planned",
            sources=_NEW,
            target=AS_CREATED,
            kinds=frozenset({Kind.PREVENTIVE}),
        ),
        # Re-planning: before the provider arrives, or after a rejection. Only preventive
        # interventions and drills have an update endpoint (seeds 002, 003).
        Transition(
            Action.UPDATE,
            past="updated",
            sources=_BEFORE_EXECUTION | {Status.REJECTED},
            target=AS_REPLANNED,
            kinds=frozenset({Kind.PREVENTIVE, Kind.TRAINING}),
        ),
        Transition(
            Action.VALIDATE_TRAINING,
            past="validated",
            sources=_BEFORE_EXECUTION | {Status.TO_VERIFY},
            target=Status.VALIDATED,
            kinds=frozenset({Kind.TRAINING}),
        ),
        Transition(
            Action.CHECK_IN,
            past="checked in",
            sources=_BEFORE_EXECUTION,
            target=Status.IN_PROGRESS,
            guards=(PIN_MATCHES,),
        ),
        # Execution needs the check-in: from in progress only.
        Transition(
            Action.EXECUTE,
            past="executed",
            sources=frozenset({Status.IN_PROGRESS}),
            target=Status.TO_VERIFY,
            guards=(SIGNED, ATTENDEES_FOR_DRILLS),
            refused_as={Status.TO_SCHEDULE: NotCheckedIn, Status.SCHEDULED: NotCheckedIn},
        ),
        Transition(
            Action.VERIFY,
            past="verified",
            sources=frozenset({Status.TO_VERIFY}),
            target=FROM_DECISION,
            anomalies=AnomalyMove(AnomalyStatus.IN_REPAIR, ANOMALIES_BY_DECISION),
            refused_as={Status.IN_PROGRESS: NotExecuted},
        ),
        # Before execution or after a rejection; an executed one awaits its verification.
        Transition(
            Action.CANCEL,
            past="cancelled",
            sources=_BEFORE_EXECUTION | {Status.IN_PROGRESS, Status.REJECTED},
            target=Status.CANCELLED,
            anomalies=AnomalyMove(AnomalyStatus.IN_REPAIR, AnomalyStatus.OPEN),
        ),
        # Not a status change, but a write on the intervention (its history): a cancelled one
        # stays readable and takes none (SPEC §4.3).
        Transition(
            Action.SEND_INFORMATION,
            past="sent by e-mail",
            sources=frozenset(Status) - {Status.CANCELLED},
            target=UNCHANGED,
        ),
    )
}

STATUS_NAMES = {
    Status.TO_SCHEDULE: "to schedule",
    Status.SCHEDULED: "scheduled",
    Status.IN_PROGRESS: "in progress",
    Status.TO_VERIFY: "to verify",
    Status.VALIDATED: "validated",
    Status.REJECTED: "rejected",
    Status.CANCELLED: "cancelled",
}

# Every enum's members as the wire names them (SPEC §4.2) and in words: the lifecycle
# endpoint lists them.
NAMES: Mapping[type[IntEnum], Mapping[int, tuple[str, str]]] = {
    Status: {
        Status.TO_SCHEDULE: ("toSchedule", STATUS_NAMES[Status.TO_SCHEDULE]),
        Status.SCHEDULED: ("scheduled", STATUS_NAMES[Status.SCHEDULED]),
        Status.IN_PROGRESS: ("inProgress", STATUS_NAMES[Status.IN_PROGRESS]),
        Status.TO_VERIFY: ("toVerify", STATUS_NAMES[Status.TO_VERIFY]),
        Status.VALIDATED: ("validated", STATUS_NAMES[Status.VALIDATED]),
        Status.REJECTED: ("rejected", STATUS_NAMES[Status.REJECTED]),
        Status.CANCELLED: ("cancelled", STATUS_NAMES[Status.CANCELLED]),
    },
    Kind: {
        Kind.PREVENTIVE: ("preventive", "preventive"),
        Kind.CURATIVE: ("curative", "curative"),
        Kind.TRAINING: ("trainingExercise", "training exercise"),
    },
    CreationStatus: {
        CreationStatus.TO_SCHEDULE: ("toScheduled", "to schedule"),
        CreationStatus.SCHEDULED: ("scheduled", "scheduled"),
        CreationStatus.DONE: ("done", "done (recorded after the fact)"),
    },
    Decision: {
        Decision.ACCEPT: ("accept", "accept"),
        Decision.REJECT: ("reject", "reject"),
    },
    AnomalyStatus: {
        AnomalyStatus.OPEN: ("open", "open"),
        AnomalyStatus.IN_REPAIR: ("inRepair", "in repair"),
        AnomalyStatus.RESOLVED: ("resolved", "resolved"),
    },
}

# The ``actions`` flags of an intervention's detail, each with the transitions it stands for:
# set when the caller may write and one of them is allowed from the intervention's status on
# its kind (``flags``).
ACTION_FLAGS: Mapping[str, tuple[Action, ...]] = {
    "can_be_updated": (Action.UPDATE,),
    "can_be_deleted": (Action.CANCEL,),
    "can_be_executed": (Action.CHECK_IN, Action.EXECUTE),
    "can_be_verified": (Action.VERIFY, Action.VALIDATE_TRAINING),
}

# Why an action is refused, from the status the intervention is in, unless its transition
# says better (``refused_as``).
REFUSED_IN: dict[Status, type[LifecycleConflict]] = {
    Status.TO_SCHEDULE: NotExecuted,
    Status.SCHEDULED: NotExecuted,
    Status.IN_PROGRESS: AlreadyCheckedIn,
    Status.TO_VERIFY: AlreadyExecuted,
    Status.VALIDATED: AlreadyVerified,
    Status.REJECTED: AlreadyVerified,
    Status.CANCELLED: AlreadyCancelled,
}

_KIND_NAMES = {
    Kind.PREVENTIVE: "A preventive intervention",
    Kind.CURATIVE: "A curative intervention",
    Kind.TRAINING: "A training exercise",
}


def allows(action: Action, status: int | None, kind: int) -> bool:
    """Whether ``action`` may start from ``status`` on this kind (its guards aside)."""
    transition = TRANSITIONS[action]
    return status in transition.sources and kind in transition.kinds


def flags(status: int, kind: int, *, writer: bool) -> dict[str, bool]:
    """The ``actions`` flags (``ACTION_FLAGS``) of an intervention in ``status`` of ``kind``,
    for a caller who may write (``writer``) or only read."""
    return {
        flag: writer and any(allows(action, status, kind) for action in actions)
        for flag, actions in ACTION_FLAGS.items()
    }


def ensure(action: Action, status: int | None, kind: int) -> None:
    """Raise the lifecycle's 409 when ``action`` is not allowed in ``status`` on this kind."""
    transition = TRANSITIONS[action]
    if kind not in transition.kinds:
        raise NotForThisKind(f"{_KIND_NAMES[Kind(kind)]} cannot be {transition.past}.")
    if status not in transition.sources:
        assert status is not None, "only creations start from no status, and they all may"
        current = Status(status)
        refusal = transition.refused_as.get(current, REFUSED_IN[current])
        name = STATUS_NAMES[current]
        raise refusal(f"An intervention that is {name} cannot be {transition.past}.")


def apply(action: Action, status: int | None, kind: int, **inputs: Unpack[Inputs]) -> Status:
    """The status ``action`` leads to from ``status``, after checking its sources, kinds and
    guards (each raises its own refusal). ``status`` is None for a creation."""
    ensure(action, status, kind)
    transition = TRANSITIONS[action]
    facts = Facts(None if status is None else Status(status), Kind(kind), inputs)
    for guard in transition.guards:
        if not guard.holds(facts):
            raise guard.refusal()
    target = transition.target
    return target if isinstance(target, Status) else target(facts)


def anomaly_move(
    action: Action, kind: int, **inputs: Unpack[Inputs]
) -> tuple[AnomalyStatus, AnomalyStatus] | None:
    """``(from, to)`` for the anomalies of a curative intervention the action moves; None
    when it moves none (other kinds have no anomalies)."""
    move = TRANSITIONS[action].anomalies
    if move is None or kind != Kind.CURATIVE:
        return None
    target = move.target
    if not isinstance(target, AnomalyStatus):
        target = target(Facts(None, Kind(kind), inputs))
    return move.source, target


def draw_code_pin() -> int:
    """The PIN that guards the check-in (``CHECK_IN``'s ``pin_matches``): six digits from the
    operating system's cryptographic random source, drawn when an intervention is created."""
    return 100_000 + secrets.randbelow(900_000)


# Overdue (issue 12, item 5): planned, or in progress, past its scheduled end. Executed,
# verified and cancelled interventions are never overdue.
OVERDUE_STATUSES = frozenset({Status.TO_SCHEDULE, Status.SCHEDULED, Status.IN_PROGRESS})


def is_overdue(status: int, scheduled_end: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether an intervention in ``status`` that should have ended at ``scheduled_end`` is
    overdue at ``now`` (``interventions/overdue.py``)."""
    return status in OVERDUE_STATUSES and scheduled_end is not None and scheduled_end < now
