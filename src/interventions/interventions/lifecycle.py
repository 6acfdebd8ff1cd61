"""The intervention lifecycle as data (SPEC §4.2–4.3): statuses, kinds, and one table of
transitions, each with its sources, its target (or the rule choosing it), the kinds it applies
to, its guards and what it does to a curative intervention's anomalies.

Every status change in the service goes through ``apply``; the ``actions`` flags read
``allows``; the history records each change under its transition's action name.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TypedDict, Unpack

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
class AnomalyMove:
    """What the transition does to a curative intervention's anomalies: those in ``source``
    move to ``target`` (the others are not this intervention's to move)."""

    source: AnomalyStatus
    target: AnomalyStatus | Callable[[Facts], AnomalyStatus]


@dataclass(frozen=True)
class Transition:
    action: Action
    past: str  # "… cannot be {past}."
    # None stands for an intervention not created yet.
    sources: frozenset[Status | None]
    target: Status | Callable[[Facts], Status]
    kinds: frozenset[Kind] = frozenset(Kind)
    guards: tuple[Guard, ...] = ()
    anomalies: AnomalyMove | None = None
    # Why the action is refused in a status when the status's usual reason says it badly.
    refused_as: Mapping[Status, type[LifecycleConflict]] = field(default_factory=dict)


def status_for_creation(creation_status: int) -> Status:
    """``creationStatus`` 0 → to schedule, 1 → scheduled, 2 (done, after the fact) → to verify."""
    return {
        CreationStatus.TO_SCHEDULE: Status.TO_SCHEDULE,
        CreationStatus.SCHEDULED: Status.SCHEDULED,
        CreationStatus.DONE: Status.TO_VERIFY,
    }[CreationStatus(creation_status)]


def status_after_decision(decision: int) -> Status:
    return Status.VALIDATED if decision == Decision.ACCEPT else Status.REJECTED


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
    accepted = facts.inputs["decision"] == Decision.ACCEPT
    return AnomalyStatus.RESOLVED if accepted else AnomalyStatus.OPEN


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
            target=_as_created,
            anomalies=AnomalyMove(AnomalyStatus.OPEN, AnomalyStatus.IN_REPAIR),
        ),
        # The planner, for a routine's occurrences.
        Transition(
            Action.AUTO_CREATE,
            past="planned",
            sources=_NEW,
            target=_as_created,
            kinds=frozenset({Kind.PREVENTIVE}),
        ),
        # Re-planning: before the provider arrives, or after a rejection. Only preventive
        # interventions and drills have an update endpoint (seeds 002, 003).
        Transition(
            Action.UPDATE,
            past="updated",
            sources=_BEFORE_EXECUTION | {Status.REJECTED},
            target=_as_replanned,
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
            target=_from_decision,
            anomalies=AnomalyMove(AnomalyStatus.IN_REPAIR, _anomalies_after_decision),
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
            target=_unchanged,
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
