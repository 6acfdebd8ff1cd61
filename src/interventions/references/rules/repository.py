"""Rule statements beyond the shared organisation-scoped ones."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.references.models import Rule, SiteRule
from interventions.references.repository import archive_where, contains, equals

FILTERS = {"type_": equals(Rule.type), "q": contains(Rule.name)}


async def archive_site_rules(session: AsyncSession, rule: Rule, now: dt.datetime) -> None:
    """The rule's site rules: no site carries an archived rule."""
    await archive_where(
        session, SiteRule, rule.organization_id, SiteRule.rule_id == rule.id, now=now
    )
