"""Routine statements beyond the shared organisation-scoped ones: their site rules."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.references.models import Routine, RoutineSiteRule
from interventions.references.repository import contains


def routines_of_site_rule(site_rule_id: int) -> Select[int]:
    """Ids of the routines that plan ``site_rule_id`` (a subquery for list filters)."""
    return select(RoutineSiteRule.routine_id).where(RoutineSiteRule.site_rule_id == site_rule_id)


FILTERS = {
    "q": contains(Routine.name),
    "site_rule_id": lambda site_rule_id: Routine.id.in_(routines_of_site_rule(site_rule_id)),
}


async def site_rule_ids_of_routines(
    session: AsyncSession, routine_ids: Sequence[int]
) -> dict[int, list[int]]:
    """The site rules of each routine, sorted, in one statement."""
    out: dict[int, list[int]] = {routine_id: [] for routine_id in routine_ids}
    if not routine_ids:
        return out
    rows = await session.execute(
        select(RoutineSiteRule.routine_id, RoutineSiteRule.site_rule_id)
        .where(RoutineSiteRule.routine_id.in_(routine_ids))
        .order_by(RoutineSiteRule.routine_id, RoutineSiteRule.site_rule_id)
    )
    for routine_id, site_rule_id in rows.all():
        out[routine_id].append(site_rule_id)
    return out


async def replace_routine_site_rules(
    session: AsyncSession, routine: Routine, site_rule_ids: Sequence[int]
) -> None:
    """The routine's site rules become ``site_rule_ids``: one DELETE, one INSERT."""
    await session.execute(delete(RoutineSiteRule).where(RoutineSiteRule.routine_id == routine.id))
    await session.execute(
        insert(RoutineSiteRule),
        [
            {
                "routine_id": routine.id,
                "site_rule_id": site_rule_id,
                "organization_id": routine.organization_id,
            }
            for site_rule_id in dict.fromkeys(site_rule_ids)
        ],
    )
