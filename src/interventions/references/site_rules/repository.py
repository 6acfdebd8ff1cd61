"""Site rule statements beyond the ones every resource has (``resource.Statements``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update

from interventions.db import Executor, Sql, table_of
from interventions.interventions.models import InterventionSiteRule
from interventions.references.models import SiteRule
from interventions.references.repository import equals

_SITE_RULES = table_of(SiteRule)
_SITE_RULE = _SITE_RULES.c
_RECORDED = table_of(InterventionSiteRule).c

FILTERS = {"site_id": equals(_SITE_RULE.site_id), "rule_id": equals(_SITE_RULE.rule_id)}

_OURS = _SITE_RULE.organization_id == bindparam("organization_id")
_OF_PAIR = Sql(
    select(_SITE_RULES).where(
        _OURS,
        _SITE_RULE.site_id == bindparam("site_id"),
        _SITE_RULE.rule_id == bindparam("rule_id"),
    )
)
_REVIVE = Sql(
    update(_SITE_RULES)
    .where(_OURS, _SITE_RULE.id == bindparam("id"))
    .values(archived_at=None)
    .returning(*_SITE_RULE)
)
_RECORDED_ONCE = Sql(
    select(_RECORDED.intervention_id)
    .where(
        _RECORDED.organization_id == bindparam("organization_id"),
        _RECORDED.site_rule_id == bindparam("site_rule_id"),
    )
    .limit(1)
)


async def site_rule_of_pair(
    db: Executor, organization_id: int, site_id: int, rule_id: int
) -> Any | None:
    """The site rule of (site, rule), archived or not: the pair is unique in the table."""
    return await db.first(
        _OF_PAIR, organization_id=organization_id, site_id=site_id, rule_id=rule_id
    )


async def revive(db: Executor, site_rule: Any) -> Any:
    """The archived site rule brought back; the row as it now is."""
    return await db.first(_REVIVE, organization_id=site_rule.organization_id, id=site_rule.id)


async def site_rule_recorded(db: Executor, organization_id: int, site_rule_id: int) -> bool:
    """Whether an intervention (cancelled ones included) names the site rule."""
    found = await db.first(
        _RECORDED_ONCE, organization_id=organization_id, site_rule_id=site_rule_id
    )
    return found is not None
