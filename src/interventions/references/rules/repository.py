"""Rule statements beyond the ones every resource has (``resource.Statements``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, update

from interventions.db import Executor, Sql, table_of
from interventions.references.models import Rule, SiteRule
from interventions.references.repository import contains, equals

_RULE = table_of(Rule).c
FILTERS = {"type_": equals(_RULE.type), "q": contains(_RULE.name)}

_SITE_RULES = table_of(SiteRule)
_ARCHIVE_SITE_RULES = Sql(
    update(_SITE_RULES)
    .where(
        _SITE_RULES.c.organization_id == bindparam("organization_id"),
        _SITE_RULES.c.rule_id == bindparam("rule_id"),
        _SITE_RULES.c.archived_at.is_(None),
    )
    .values(archived_at=bindparam("now"))
)


async def archive_site_rules(db: Executor, rule: Any, now: dt.datetime) -> None:
    """The rule's site rules: no site carries an archived rule."""
    await db.execute(
        _ARCHIVE_SITE_RULES, organization_id=rule.organization_id, rule_id=rule.id, now=now
    )
