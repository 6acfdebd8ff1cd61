"""The intervention lifecycle as data (SPEC §4.2–4.3): statuses, types, allowed transitions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from interventions.errors import Conflict


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
    UPDATE = "update"
    VERIFY = "verify"
    VALIDATE_TRAINING = "validate"
    CHECK_IN = "check-in"
    EXECUTE = "execute"
    CANCEL = "cancel"
    SEND_INFORMATION = "information-email"


@dataclass(frozen=True)
class Transition:
    allowed_from: frozenset[Status]
    kinds: frozenset[Kind] = frozenset(Kind)


_ALL_KINDS = frozenset(Kind)

TRANSITIONS: dict[Action, Transition] = {
    # Re-planning: before the provider arrives, or after a rejection.
    # Only preventive interventions and drills have an update endpoint (seeds 002, 003).
    Action.UPDATE: Transition(
        frozenset({Status.TO_SCHEDULE, Status.SCHEDULED, Status.REJECTED}),
        frozenset({Kind.PREVENTIVE, Kind.TRAINING}),
    ),
    Action.VERIFY: Transition(frozenset({Status.TO_VERIFY})),
    Action.VALIDATE_TRAINING: Transition(
        frozenset({Status.TO_SCHEDULE, Status.SCHEDULED, Status.TO_VERIFY}),
        frozenset({Kind.TRAINING}),
    ),
    Action.CHECK_IN: Transition(frozenset({Status.TO_SCHEDULE, Status.SCHEDULED})),
    Action.EXECUTE: Transition(frozenset({Status.IN_PROGRESS})),
    Action.CANCEL: Transition(
        frozenset({Status.TO_SCHEDULE, Status.SCHEDULED, Status.IN_PROGRESS, Status.REJECTED})
    ),
    # Not a status change, but a write on the intervention (its history): a cancelled one
    # stays readable and takes none (SPEC §4.3).
    Action.SEND_INFORMATION: Transition(frozenset(Status) - {Status.CANCELLED}),
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


def allows(action: Action, status: int, kind: int) -> bool:
    transition = TRANSITIONS[action]
    return status in transition.allowed_from and kind in transition.kinds


def ensure(action: Action, status: int, kind: int) -> None:
    """Raise 409 when ``action`` is not allowed on an intervention in ``status``."""
    if not allows(action, status, kind):
        name = STATUS_NAMES.get(Status(status), str(status))
        raise Conflict(f"An intervention that is {name} cannot be {_past(action)}.")


def _past(action: Action) -> str:
    return {
        Action.UPDATE: "updated",
        Action.VERIFY: "verified",
        Action.VALIDATE_TRAINING: "validated",
        Action.CHECK_IN: "checked in",
        Action.EXECUTE: "executed",
        Action.CANCEL: "cancelled",
        Action.SEND_INFORMATION: "sent by e-mail",
    }[action]


def status_for_creation(creation_status: int) -> Status:
    """``creationStatus`` 0 → to schedule, 1 → scheduled, 2 (done, after the fact) → to verify."""
    return {
        CreationStatus.TO_SCHEDULE: Status.TO_SCHEDULE,
        CreationStatus.SCHEDULED: Status.SCHEDULED,
        CreationStatus.DONE: Status.TO_VERIFY,
    }[CreationStatus(creation_status)]


def status_after_decision(decision: int) -> Status:
    return Status.VALIDATED if decision == Decision.ACCEPT else Status.REJECTED
