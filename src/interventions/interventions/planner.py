"""Routines that plan by themselves: the worker creates each upcoming occurrence's
preventive intervention ahead of time, exactly once per occurrence.

"Exactly once" rests on the database, not on the worker: interventions are unique on
(routine_id, occurrence_start) and the planner inserts with ON CONFLICT DO NOTHING, so that
several workers, or one restarted in the middle, can never plan an occurrence twice. Each
routine is planned in its own transaction: a crash leaves whole routines planned or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from anyio import to_thread

from interventions.db import Database, Executor, utcnow
from interventions.interventions import repository as repo
from interventions.interventions.lifecycle import (
    Action,
    CheckType,
    CreationStatus,
    Kind,
    apply,
    draw_code_pin,
)
from interventions.references import repository as refs
from interventions.references.recurrence import InvalidRecurrence, occurrences
from interventions.register.journal import system_actor

logger = logging.getLogger(__name__)

# At most this many occurrences of one routine are planned per round.
MAX_PER_ROUND = 366


async def _occurrences_of(routine: Any, now: dt.datetime) -> list[dt.datetime]:
    start = routine.dtstart or routine.created_at
    until = now + dt.timedelta(days=routine.horizon_days)
    text = routine.rrule or ""
    # A pathological rule can take a moment to expand: off the event loop.
    return await to_thread.run_sync(
        lambda: occurrences(text, start, max(now, start), until, limit=MAX_PER_ROUND)
    )


async def plan_routine(
    db: Executor, organization_id: int, routine_id: int, now: dt.datetime
) -> int:
    """Create the routine's missing upcoming interventions; how many were created."""
    routine, site_rules = await repo.routine_to_plan(db, organization_id, routine_id)
    if routine is None or not routine.rrule or not site_rules:
        return 0
    try:
        starts = await _occurrences_of(routine, now)
    except InvalidRecurrence:
        logger.warning("routine %s has an invalid RRULE; not planned", routine.id)
        return 0
    if not starts:
        return 0
    planned = await repo.planned_occurrences(db, organization_id, routine.id, starts[0])
    company_id = None
    if routine.assigned_company_contact_id is not None:
        contact_id = routine.assigned_company_contact_id
        contact = (await refs.contacts(db, organization_id, [contact_id])).get(contact_id)
        company_id = contact.company_id if contact else None
    duration = dt.timedelta(minutes=routine.duration_minutes)
    status = apply(
        Action.AUTO_CREATE, None, Kind.PREVENTIVE, creation_status=CreationStatus.SCHEDULED
    )
    created = []
    for start in starts:
        if start in planned:
            continue
        # Inserted unless the occurrence is planned meanwhile (unique on the routine and
        # the occurrence, ON CONFLICT DO NOTHING): exactly once whoever plans.
        row = await repo.insert_occurrence(
            db,
            {
                "organization_id": organization_id,
                "type": Kind.PREVENTIVE,
                "status": status,
                "creation_status": CreationStatus.SCHEDULED,
                "check_type": CheckType.PLANNED,
                "code_pin": draw_code_pin(),
                "auto_created": True,
                "scheduled_start": start,
                "scheduled_end": start + duration,
                "routine_id": routine.id,
                "occurrence_start": start,
                "assigned_profile_id": routine.assigned_profile_id,
                "assigned_company_contact_id": routine.assigned_company_contact_id,
                "company_id": company_id,
                "created_at": now,
                "updated_at": now,
            },
        )
        if row is not None:
            created.append(row)
    if not created:
        return 0
    site_ids = sorted({sr.site_id for sr in site_rules})
    rule_ids = sorted({sr.rule_id for sr in site_rules})
    for row in created:
        await repo.add_links(db, row, "site_rule_ids", [sr.id for sr in site_rules])
        await repo.add_links(db, row, "site_ids", site_ids)
        await repo.add_links(db, row, "rule_ids", rule_ids)
    for row in created:
        await repo.record_history(
            db,
            row,
            actor=system_actor("planner"),
            action=Action.AUTO_CREATE,
            changes={"routineId": routine.id},
        )
    return len(created)


async def plan_once(db: Database, now: dt.datetime | None = None) -> int:
    """One planning round over every routine with auto-creation on, each routine in a
    transaction of its own."""
    now = now or utcnow()
    async with db.transaction(write=False) as ex:
        routines = await repo.routines_to_plan(ex)
    total = 0
    for organization_id, routine_id in routines:
        try:
            async with db.transaction() as ex:
                total += await plan_routine(ex, organization_id, routine_id, now)
        except Exception:
            logger.exception("planning routine %s failed; it is retried next round", routine_id)
    return total


async def plan_forever(db: Database, interval_seconds: float, stop: asyncio.Event) -> None:
    """Plan every ``interval_seconds`` until ``stop`` is set; never dies on an error."""
    while not stop.is_set():
        try:
            created = await plan_once(db)
            if created:
                logger.info("planned %d intervention(s) from routines", created)
        except Exception:
            logger.exception("planning round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
