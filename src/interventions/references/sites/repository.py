"""Site statements beyond the shared organisation-scoped ones."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.references.models import Site, SiteRule
from interventions.references.repository import archive_where, contains

FILTERS = {"q": contains(Site.name)}


async def archive_site_rules(session: AsyncSession, site: Site, now: dt.datetime) -> None:
    """The site's site rules: none of them can be referenced once the site is archived."""
    await archive_where(
        session, SiteRule, site.organization_id, SiteRule.site_id == site.id, now=now
    )
