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
from collections.abc import Sequence
from typing import Any

from anyio import to_thread
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.db import Database, utcnow
from interventions.interventions.lifecycle import Action, CheckType, CreationStatus, Kind, apply
from interventions.interventions.models import (
    Intervention,
    InterventionHistory,
    InterventionRule,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.interventions.service import draw_code_pin
from interventions.references.models import CompanyContact, Routine, RoutineSiteRule, SiteRule
from interventions.references.recurrence import InvalidRecurrence, occurrences

logger = logging.getLogger(__name__)

# At most this many occurrences of one routine are planned per round.
MAX_PER_ROUND = 366


def _insert_ignoring_duplicates(session: AsyncSession, rows: list[dict[str, Any]]) -> Any:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(Intervention)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["routine_id", "occurrence_start"])
        .returning(Intervention.id, Intervention.organization_id)
    )


async def _occurrences_of(routine: Routine, now: dt.datetime) -> list[dt.datetime]:
    start = routine.dtstart or routine.created_at
    until = now + dt.timedelta(days=routine.horizon_days)
    text = routine.rrule or ""
    # A pathological rule can take a moment to expand: off the event loop.
    return await to_thread.run_sync(
        lambda: occurrences(text, start, max(now, start), until, limit=MAX_PER_ROUND)
    )


async def plan_routine(db: Database, routine_id: int, now: dt.datetime) -> int:
    """Create the routine's missing upcoming interventions; how many were created."""
    async with db.writer() as session, session.begin():
        routine = (
            await session.execute(
                select(Routine).where(
                    Routine.id == routine_id,
                    Routine.auto_create_enabled.is_(True),
                    Routine.archived_at.is_(None),
                )
            )
        ).scalar_one_or_none()
        if routine is None or not routine.rrule:
            return 0
        try:
            starts = await _occurrences_of(routine, now)
        except InvalidRecurrence:
            logger.warning("routine %s has an invalid RRULE; not planned", routine.id)
            return 0
        if not starts:
            return 0
        site_rules: Sequence[Any] = (
            await session.execute(
                select(SiteRule.id, SiteRule.site_id, SiteRule.rule_id)
                .join(RoutineSiteRule, RoutineSiteRule.site_rule_id == SiteRule.id)
                .where(RoutineSiteRule.routine_id == routine.id)
            )
        ).all()
        if not site_rules:
            return 0
        company_id = None
        if routine.assigned_company_contact_id is not None:
            contact = await session.get(CompanyContact, routine.assigned_company_contact_id)
            company_id = contact.company_id if contact else None
        duration = dt.timedelta(minutes=routine.duration_minutes)
        status = apply(
            Action.AUTO_CREATE, None, Kind.PREVENTIVE, creation_status=CreationStatus.SCHEDULED
        )
        rows = [
            {
                "organization_id": routine.organization_id,
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
            }
            for start in starts
        ]
        created = [
            row.id
            for row in (await session.execute(_insert_ignoring_duplicates(session, rows))).all()
        ]
        if not created:
            return 0
        org = routine.organization_id
        site_ids = sorted({sr.site_id for sr in site_rules})
        rule_ids = sorted({sr.rule_id for sr in site_rules})
        await session.execute(
            insert(InterventionSiteRule),
            [
                {"intervention_id": i, "site_rule_id": sr.id, "organization_id": org}
                for i in created
                for sr in site_rules
            ],
        )
        await session.execute(
            insert(InterventionSite),
            [
                {"intervention_id": i, "site_id": s, "organization_id": org}
                for i in created
                for s in site_ids
            ],
        )
        await session.execute(
            insert(InterventionRule),
            [
                {"intervention_id": i, "rule_id": r, "organization_id": org}
                for i in created
                for r in rule_ids
            ],
        )
        await session.execute(
            insert(InterventionHistory),
            [
                {
                    "organization_id": org,
                    "intervention_id": i,
                    "user_id": None,
                    "action": Action.AUTO_CREATE,
                    "changes": {"routineId": routine.id},
                    "created_at": now,
                }
                for i in created
            ],
        )
        return len(created)


async def plan_once(db: Database, now: dt.datetime | None = None) -> int:
    """One planning round over every routine with auto-creation on."""
    now = now or utcnow()
    async with db.reader() as session, session.begin():
        routine_ids = list(
            (
                await session.execute(
                    select(Routine.id)
                    .where(
                        Routine.auto_create_enabled.is_(True),
                        Routine.archived_at.is_(None),
                        Routine.rrule.is_not(None),
                    )
                    .order_by(Routine.id)
                )
            ).scalars()
        )
    total = 0
    for routine_id in routine_ids:
        try:
            total += await plan_routine(db, routine_id, now)
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
