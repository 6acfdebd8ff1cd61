"""Routine statements beyond the ones every resource has (``resource.Statements``): their
site rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select

from interventions.db import Executor, Sql, any_of, table_of
from interventions.references.models import Routine, RoutineSiteRule
from interventions.references.repository import Filter, contains

_ROUTINE = table_of(Routine).c
_LINKS = table_of(RoutineSiteRule)
_LINK = _LINKS.c
_OURS = _LINK.organization_id == bindparam("organization_id")


def _planning(site_rule_id: Any) -> Any:
    """The routines that plan the site rule (the organisation's: the list's own parameter)."""
    return _ROUTINE.id.in_(
        select(_LINK.routine_id).where(_OURS, _LINK.site_rule_id == site_rule_id)
    )


FILTERS = {"q": contains(_ROUTINE.name), "site_rule_id": Filter(_planning)}

_SITE_RULES_OF = Sql(
    select(_LINK.routine_id, _LINK.site_rule_id)
    .where(_OURS, any_of(_LINK.routine_id, "ids"))
    .order_by(_LINK.routine_id, _LINK.site_rule_id)
)
_UNLINK = Sql(delete(_LINKS).where(_OURS, _LINK.routine_id == bindparam("routine_id")))
_LINK_ONE = Sql(
    insert(_LINKS).values(
        routine_id=bindparam("routine_id"),
        site_rule_id=bindparam("site_rule_id"),
        organization_id=bindparam("organization_id"),
    )
)


async def site_rule_ids_of_routines(
    db: Executor, organization_id: int, routine_ids: Sequence[int]
) -> dict[int, list[int]]:
    """The site rules of each of the organisation's routines, sorted, in one statement."""
    out: dict[int, list[int]] = {routine_id: [] for routine_id in routine_ids}
    if not routine_ids:
        return out
    rows = await db.all(_SITE_RULES_OF, organization_id=organization_id, ids=list(routine_ids))
    for routine_id, site_rule_id in rows:
        out[routine_id].append(site_rule_id)
    return out


async def replace_routine_site_rules(
    db: Executor, routine: Any, site_rule_ids: Sequence[int]
) -> None:
    """The routine's site rules become ``site_rule_ids``: one DELETE, one batch of INSERTs."""
    org = routine.organization_id
    await db.execute(_UNLINK, organization_id=org, routine_id=routine.id)
    await db.many(
        _LINK_ONE,
        [
            {"routine_id": routine.id, "site_rule_id": site_rule_id, "organization_id": org}
            for site_rule_id in dict.fromkeys(site_rule_ids)
        ],
    )
