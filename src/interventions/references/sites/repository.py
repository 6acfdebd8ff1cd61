"""Site statements beyond the ones every resource has (``resource.Statements``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, update

from interventions.db import Executor, Sql, table_of
from interventions.references.models import Site, SiteRule
from interventions.references.repository import contains

FILTERS = {"q": contains(table_of(Site).c.name)}

_SITE_RULES = table_of(SiteRule)
_ARCHIVE_SITE_RULES = Sql(
    update(_SITE_RULES)
    .where(
        _SITE_RULES.c.organization_id == bindparam("organization_id"),
        _SITE_RULES.c.site_id == bindparam("site_id"),
        _SITE_RULES.c.archived_at.is_(None),
    )
    .values(archived_at=bindparam("now"))
)


async def archive_site_rules(db: Executor, site: Any, now: dt.datetime) -> None:
    """The site's site rules: none of them can be referenced once the site is archived."""
    await db.execute(
        _ARCHIVE_SITE_RULES, organization_id=site.organization_id, site_id=site.id, now=now
    )
