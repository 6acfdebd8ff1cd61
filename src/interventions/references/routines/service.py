"""Routine use cases: an RRULE that fires at most hourly (checked off the event loop), site
rules, assignee and contact of the organisation; archiving one stops its planning (its
interventions stay)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from anyio import to_thread

from interventions.auth.dependencies import Caller
from interventions.db import Executor, utcnow
from interventions.errors import BadRequest, Unprocessable
from interventions.interventions.repository import profile_users
from interventions.references import recurrence
from interventions.references import repository as refs
from interventions.references.models import Routine, SiteRule
from interventions.references.resource import Resource
from interventions.references.routines import repository
from interventions.references.routines.schemas import RoutineCreate, RoutineRead, RoutineUpdate


async def _routine_reads(db: Executor, routines: Sequence[Any]) -> list[RoutineRead]:
    """Wire form of routines: one statement for all their site rules, one for the users of
    their assignees."""
    org = routines[0].organization_id if routines else 0
    site_rules = await repository.site_rule_ids_of_routines(db, org, [r.id for r in routines])
    users = await profile_users(db, org, (r.assigned_profile_id for r in routines))
    return [
        RoutineRead(
            id=r.id,
            organization_id=r.organization_id,
            name=r.name,
            site_rule_ids=site_rules[r.id],
            rrule=r.rrule,
            dtstart=r.dtstart,
            duration_minutes=r.duration_minutes,
            horizon_days=r.horizon_days,
            auto_create_enabled=r.auto_create_enabled,
            assigned_profile_id=r.assigned_profile_id,
            assigned_user_id=users.get(r.assigned_profile_id) if r.assigned_profile_id else None,
            assigned_company_contact_id=r.assigned_company_contact_id,
            archived_at=r.archived_at,
            created_at=r.created_at,
        )
        for r in routines
    ]


async def _checked_rrule(text: str, dtstart: dt.datetime | None, field: str) -> str:
    """The normalised RRULE, else 400 on ``field``. Off the event loop: a pathological rule
    can take a noticeable fraction of a second to expand."""
    try:
        return await to_thread.run_sync(recurrence.validate, text, dtstart)
    except recurrence.InvalidRecurrence as exc:
        raise BadRequest(
            f"The RRULE {exc}.", errors=[{"field": field, "message": f"The RRULE {exc}."}]
        ) from exc


async def _check_routine_references(
    db: Executor,
    caller: Caller,
    body: RoutineCreate | RoutineUpdate,
) -> tuple[bool, int | None]:
    """Site rules, assignee profile and contact of the organisation (not archived), else 422.
    Returns whether an assignee was given, and its profile id."""
    org = caller.organization_id
    if body.site_rule_ids is not None:
        await refs.require_all(
            db, SiteRule, org, body.site_rule_ids, field="siteRuleIds", label="site rule"
        )
    given, profile = await refs.assignee_profile(
        db,
        org,
        body.model_fields_set,
        user_id=body.assigned_user_id,
        profile_id=body.assigned_profile_id,
    )
    if body.assigned_company_contact_id is not None:
        await refs.require_contact(
            db, org, body.assigned_company_contact_id, field="assignedCompanyContactId"
        )
    return given, profile.id if profile is not None else None


def _check_auto_create(auto_create_enabled: bool, rrule: str | None) -> None:
    if auto_create_enabled and rrule is None:
        raise Unprocessable(
            "A routine without an RRULE cannot plan by itself.",
            errors=[{"field": "autoCreateEnabled", "message": "Needs an rrule."}],
        )


async def _plan(db: Executor, caller: Caller, body: RoutineCreate) -> Any:
    # Whole seconds: occurrences fall on the second the client sees, not a microsecond after.
    dtstart = body.dtstart or utcnow().replace(microsecond=0)
    rrule = await _checked_rrule(body.rrule, dtstart, "rrule") if body.rrule else None
    _, assignee = await _check_routine_references(db, caller, body)
    _check_auto_create(body.auto_create_enabled, rrule)
    routine = await routines.add(
        db,
        {
            "organization_id": caller.organization_id,
            "name": body.name,
            "rrule": rrule,
            "dtstart": dtstart,
            "duration_minutes": body.duration_minutes,
            "horizon_days": body.horizon_days,
            "auto_create_enabled": body.auto_create_enabled,
            "assigned_profile_id": assignee,
            "assigned_company_contact_id": body.assigned_company_contact_id,
            "created_at": utcnow(),
        },
    )
    await repository.replace_routine_site_rules(db, routine, body.site_rule_ids)
    return routine


async def _replan(
    db: Executor, caller: Caller, routine: Any, body: RoutineUpdate
) -> dict[str, Any]:
    fields = body.model_fields_set
    rrule = body.rrule if "rrule" in fields else routine.rrule
    dtstart = body.dtstart if body.dtstart is not None else routine.dtstart
    if rrule is not None and ("rrule" in fields or body.dtstart is not None):
        # A new DTSTART can make the same rule never occur (an UNTIL before it). Without one,
        # the planner starts from the routine's creation: so does the check.
        rrule = await _checked_rrule(
            rrule,
            dtstart or routine.created_at,
            "rrule" if "rrule" in fields else "dtstart",
        )
    assignee_given, assignee = await _check_routine_references(db, caller, body)
    auto_create = (
        body.auto_create_enabled
        if body.auto_create_enabled is not None
        else routine.auto_create_enabled
    )
    _check_auto_create(auto_create, rrule)

    changes: dict[str, Any] = {
        "rrule": rrule,
        "dtstart": dtstart,
        "auto_create_enabled": auto_create,
    }
    if body.name is not None:
        changes["name"] = body.name
    if body.duration_minutes is not None:
        changes["duration_minutes"] = body.duration_minutes
    if body.horizon_days is not None:
        changes["horizon_days"] = body.horizon_days
    if assignee_given:
        changes["assigned_profile_id"] = assignee
    if "assigned_company_contact_id" in fields:
        changes["assigned_company_contact_id"] = body.assigned_company_contact_id
    if body.site_rule_ids is not None:
        await repository.replace_routine_site_rules(db, routine, body.site_rule_ids)
    return changes


# An archived routine plans nothing more; its interventions stay.
routines: Resource[RoutineRead, RoutineCreate, RoutineUpdate] = Resource(
    model=Routine,
    label="routine",
    read=RoutineRead,
    filters=repository.FILTERS,
    insert=_plan,
    change=_replan,
    reads=_routine_reads,
)
