"""The wire form of interventions, built from the repository's records (``repository.Row``):
the repository reads and writes rows, the services decide, this module presents."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from pydantic.alias_generators import to_camel

from interventions.db import Executor, utcnow
from interventions.interventions import lifecycle
from interventions.interventions import repository as repo
from interventions.interventions.lifecycle import is_overdue
from interventions.interventions.schemas import (
    ActionFlagRead,
    AnomalyMoveRead,
    EnumMemberRead,
    GuardRead,
    InterventionRead,
    LifecycleRead,
    RuleTarget,
    StatusTarget,
    TransitionRead,
)


def signature_path(file_id: str | None) -> str | None:
    return f"/storage/v1/rs/files/{file_id}" if file_id else None


def read_fields(row: Any, link_sets: dict[str, list[int]]) -> dict[str, Any]:
    """The members of the wire form, from a ``Row``."""
    i = row
    return dict(
        id=i.id,
        status=i.status,
        type=i.type,
        description=i.description,
        img_signature=signature_path(i.signature_file_id),
        code_pin=i.code_pin,
        auto_created=i.auto_created,
        creation_status=i.creation_status,
        scheduled_start=i.scheduled_start,
        scheduled_end=i.scheduled_end,
        actual_start=i.actual_start,
        actual_end=i.actual_end,
        provider_name=i.provider_name,
        provider_email=i.provider_email,
        provider_action_comment=i.provider_action_comment,
        provider_general_comment=i.provider_general_comment,
        assigned_company_contact_id=i.assigned_company_contact_id,
        assigned_user_id=i.assigned_user_id,
        assigned_profile_id=i.assigned_profile_id,
        verified_by_user_id=i.verified_by_user_id,
        verified_by_id=i.verified_by_user_id,
        verified_at=i.verified_at,
        decision_comment=i.decision_comment,
        attendee_count=i.attendee_count,
        routine_id=i.routine_id,
        organization_id=i.organization_id,
        created_by_user_id=i.created_by_user_id,
        created_by_id=i.created_by_user_id,
        company_id=i.company_id,
        negotiation_end_date=i.negotiation_end_date,
        check_type=i.check_type,
        archived_at=i.archived_at,
        deleted_at=i.deleted_at,
        cancellation_reason=i.cancellation_reason,
        updated_at=i.updated_at,
        created_at=i.created_at,
        version=i.version,
        overdue=is_overdue(i.status, i.scheduled_end, utcnow()),
        **link_sets,
    )


def to_read(row: Any, link_sets: dict[str, list[int]]) -> InterventionRead:
    # Validated, not ``model_construct``: pydantic-core's validation (3.7 µs for this model)
    # is cheaper than the pure-Python construction (11 µs).
    return InterventionRead(**read_fields(row, link_sets))


async def read_many(db: Executor, rows: Sequence[Any]) -> list[InterventionRead]:
    """Wire form of several interventions: one statement (their links) whatever their number."""
    if not rows:
        return []
    link_sets = await repo.links(db, rows[0].organization_id, [r.id for r in rows])
    return [to_read(r, link_sets[r.id]) for r in rows]


async def read_one(
    db: Executor, row: Any, link_sets: dict[str, list[int]] | None = None
) -> InterventionRead:
    """Wire form of one intervention; ``link_sets`` when the caller knows all four already
    (it has just written or read them), so that nothing is read twice."""
    if link_sets is None:
        return (await read_many(db, [row]))[0]
    return to_read(row, link_sets)


# --- the lifecycle as data --------------------------------------------------------------------


def _members(enum: type[IntEnum]) -> list[EnumMemberRead]:
    return [
        EnumMemberRead(value=value, name=name, label=label)
        for value, (name, label) in sorted(lifecycle.NAMES[enum].items())
    ]


def _target(target: IntEnum | lifecycle.Rule[Any]) -> StatusTarget | RuleTarget:
    if isinstance(target, lifecycle.Rule):
        return RuleTarget(
            rule=target.name,
            description=target.description,
            input=target.input,
            values={str(int(k)): int(v) for k, v in target.values.items()},
            keeps=target.keeps,
        )
    return StatusTarget(status=int(target))


def _guard(guard: lifecycle.Guard) -> GuardRead:
    refusal = guard.refusal()
    return GuardRead(name=guard.name, status=refusal.status, detail=refusal.detail)


def _transition(transition: lifecycle.Transition) -> TransitionRead:
    move = transition.anomalies
    return TransitionRead(
        action=transition.action.value,
        label=transition.past,
        creates=None in transition.sources,
        sources=sorted(int(s) for s in transition.sources if s is not None),
        target=_target(transition.target),
        kinds=sorted(int(k) for k in transition.kinds),
        guards=[_guard(g) for g in transition.guards],
        anomalies=None
        if move is None
        else AnomalyMoveRead(source=int(move.source), target=_target(move.target)),
    )


@functools.cache
def lifecycle_read() -> LifecycleRead:
    """The lifecycle table as the API describes it: built from ``lifecycle.TRANSITIONS`` and
    the enums' names, once (the table is code, it never changes while the process runs)."""
    return LifecycleRead(
        statuses=_members(lifecycle.Status),
        kinds=_members(lifecycle.Kind),
        creation_statuses=_members(lifecycle.CreationStatus),
        decisions=_members(lifecycle.Decision),
        anomaly_statuses=_members(lifecycle.AnomalyStatus),
        transitions=[_transition(t) for t in lifecycle.TRANSITIONS.values()],
        action_flags=[
            ActionFlagRead(flag=to_camel(flag), actions=[a.value for a in actions])
            for flag, actions in lifecycle.ACTION_FLAGS.items()
        ],
    )
