"""Site rule statements beyond the shared organisation-scoped ones."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.interventions.models import InterventionSiteRule
from interventions.references.models import SiteRule
from interventions.references.repository import equals

FILTERS = {"site_id": equals(SiteRule.site_id), "rule_id": equals(SiteRule.rule_id)}


async def site_rule_of_pair(session: AsyncSession, site_id: int, rule_id: int) -> SiteRule | None:
    """The site rule of (site, rule), archived or not: the pair is unique in the table."""
    return (
        await session.execute(
            select(SiteRule).where(SiteRule.site_id == site_id, SiteRule.rule_id == rule_id)
        )
    ).scalar_one_or_none()


async def site_rule_recorded(session: AsyncSession, site_rule_id: int) -> bool:
    """Whether an intervention (cancelled ones included) names the site rule."""
    found = await session.execute(
        select(InterventionSiteRule.intervention_id)
        .where(InterventionSiteRule.site_rule_id == site_rule_id)
        .limit(1)
    )
    return found.first() is not None
