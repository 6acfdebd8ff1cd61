"""Overdue interventions (issue 12, item 5), and the automatic acceptance of executed ones.

An intervention is overdue when it is planned or in progress (status 1, 2 or 3) and its
``scheduledEnd`` has passed (``lifecycle.is_overdue``): every answer computes ``overdue`` from
the row and the time, and the list filters on it (``overdue=true|false``).

The worker's round (``overdue_forever``, every ``INTERVENTIONS_OVERDUE_INTERVAL_SECONDS``)
marks the newly overdue: a journal entry (action ``overdue``, actor the system's ``overdue``)
and one e-mail to its assignee and to the organisation's admins and managers, once. "Once"
rests on the database, not on the worker: the mark (``overdue_notified_at``) is set by one
conditional UPDATE (``WHERE overdue_notified_at IS NULL`` and still overdue), and the entry and
the e-mails are written in its transaction, for the rows it returned only: of several workers,
or of a re-planning racing the round, exactly one sets it. A re-planning after which the
intervention is no longer overdue clears it (``replanning.py``), so that it can be overdue
again later.

The same round accepts, in the organisations that ask for it (``autoAcceptAfterDays``),
executed interventions not verified within that many days of their ``actualEnd``: through
``service.decide``, as a manual acceptance (lifecycle, anomalies, decision e-mail, journal),
with no verifier and the system's ``auto-accept`` as the actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from interventions.auth.models import display_name
from interventions.db import Database, Executor, utcnow
from interventions.errors import Conflict, NotFound
from interventions.interventions import messaging, service
from interventions.interventions import repository as repo
from interventions.interventions.lifecycle import Decision, Status
from interventions.organizations import repository as organizations
from interventions.register.journal import system_actor

logger = logging.getLogger(__name__)

OVERDUE = "overdue"  # the journal's action
# Interventions are marked this many at a time, at most MAX_BATCHES times per round (the rest
# next round); at most BATCH are accepted per organisation and round.
BATCH = 500
MAX_BATCHES = 100


def acceptance_comment(days: int) -> str:
    return f"Accepted automatically after {days} day{'s' if days != 1 else ''}"


async def mark_organization(
    db: Executor, organization_id: int, intervention_ids: list[int], now: dt.datetime
) -> int:
    """Mark the organisation's interventions among ``intervention_ids`` that are still
    overdue and unmarked, each with its journal entry and e-mails; how many were marked."""
    marked = await repo.mark_overdue(db, organization_id, intervention_ids, now)
    if not marked:
        return 0
    writers = [(w.email, display_name(w)) for w in await repo.writer_addresses(db, organization_id)]
    profile_ids = sorted({r.assigned_profile_id for r in marked if r.assigned_profile_id})
    assignees = {
        p.id: (p.email, display_name(p))
        for p in await repo.profile_addresses(db, organization_id, profile_ids)
    }
    actor = system_actor(OVERDUE)
    for row in marked:
        await repo.record_history(
            db, row, actor=actor, action=OVERDUE, changes={"scheduledEnd": row.scheduled_end}
        )
        assignee = assignees.get(row.assigned_profile_id)
        await messaging.queue_overdue_emails(db, row, ([assignee] if assignee else []) + writers)
    return len(marked)


async def mark_overdue(database: Database, now: dt.datetime | None = None) -> int:
    """One marking round over every organisation, each in a transaction of its own, a batch
    after another until none is left; how many interventions were marked."""
    now = now or utcnow()
    total = 0
    for _ in range(MAX_BATCHES):
        async with database.transaction(write=False) as ex:
            candidates = await repo.overdue_candidates(ex, now, BATCH)
        by_organization: dict[int, list[int]] = defaultdict(list)
        for candidate in candidates:
            by_organization[candidate.organization_id].append(candidate.id)
        marked = 0
        for organization_id, ids in by_organization.items():
            try:
                async with database.transaction() as ex:
                    marked += await mark_organization(ex, organization_id, ids, now)
            except Exception:
                logger.exception("overdue: organisation %s failed; next round", organization_id)
        total += marked
        # Marked ones are no candidates any more; one that failed would come back first.
        if len(candidates) < BATCH or not marked:
            break
    return total


async def accept_automatically(
    db: Executor, organization_id: int, intervention_id: int, days: int, now: dt.datetime
) -> Any | None:
    """Accept the executed intervention if it still awaits its verification past ``days``
    (read locked); the row as it now is, or ``None`` when there is nothing to do."""
    row = await repo.get_for_update(db, organization_id, intervention_id)
    cutoff = now - dt.timedelta(days=days)
    if row.status != Status.TO_VERIFY or row.actual_end is None or row.actual_end >= cutoff:
        return None  # verified, or re-planned, meanwhile
    return await service.decide(
        db,
        row,
        decision=Decision.ACCEPT,
        comment=acceptance_comment(days),
        verifier_user_id=None,
        actor=system_actor("auto-accept"),
    )


async def auto_accept(database: Database, now: dt.datetime | None = None) -> int:
    """One round of automatic acceptances, each intervention in a transaction of its own;
    how many were accepted."""
    now = now or utcnow()
    due: list[tuple[int, int, int]] = []
    async with database.transaction(write=False) as ex:
        for organization_id, days in await organizations.auto_accepting(ex):
            cutoff = now - dt.timedelta(days=days)
            ids = await repo.executed_before(ex, organization_id, cutoff, BATCH)
            due += [(organization_id, days, i) for i in ids]
    accepted = 0
    for organization_id, days, intervention_id in due:
        try:
            async with database.transaction() as ex:
                row = await accept_automatically(ex, organization_id, intervention_id, days, now)
        except (Conflict, NotFound):
            continue  # decided by someone else meanwhile
        except Exception:
            logger.exception("auto-accept: intervention %s failed", intervention_id)
            continue
        accepted += row is not None
    return accepted


async def overdue_once(database: Database, now: dt.datetime | None = None) -> tuple[int, int]:
    """One round: (interventions marked overdue, interventions accepted automatically)."""
    return await mark_overdue(database, now), await auto_accept(database, now)


async def run_once(database: Database) -> tuple[int, int]:
    """One round on its own (``interventions overdue``), the database disposed of after."""
    try:
        return await overdue_once(database)
    finally:
        await database.dispose()


async def overdue_forever(database: Database, interval_seconds: float, stop: asyncio.Event) -> None:
    """A round every ``interval_seconds`` until ``stop`` is set; never dies on an error."""
    while not stop.is_set():
        try:
            marked, accepted = await overdue_once(database)
            if marked or accepted:
                logger.info("overdue: %d marked, %d accepted automatically", marked, accepted)
        except Exception:
            logger.exception("overdue round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
