"""Site rule use cases: one site rule per (site, rule) pair, of the organisation's sites and
rules; the pair of a site rule that interventions name stays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interventions.auth.dependencies import Caller
from interventions.db import Executor, utcnow
from interventions.errors import Conflict
from interventions.references import repository as refs
from interventions.references.models import Rule, Site, SiteRule
from interventions.references.resource import Resource
from interventions.references.site_rules import repository
from interventions.references.site_rules.schemas import (
    SiteRuleCreate,
    SiteRuleRead,
    SiteRuleUpdate,
)


def _pair_taken(site_id: int, rule_id: int, site_rule: Any) -> Conflict:
    state = "an archived site rule" if site_rule.archived_at is not None else "site rule"
    return Conflict(
        f"Site {site_id} already carries rule {rule_id}: {state} {site_rule.id}.",
        errors=[{"field": "ruleId", "message": f"Already applied to site {site_id}."}],
    )


def _raced(values: Mapping[str, Any]) -> str:
    """A unique constraint another request won meanwhile: a 409, not a 500."""
    return f"Site {values['site_id']} already carries rule {values['rule_id']}."


async def _apply(db: Executor, caller: Caller, body: SiteRuleCreate) -> Any:
    """Apply a rule to a site. Re-applying an archived pair brings its site rule back."""
    org = caller.organization_id
    await refs.require_all(db, Site, org, [body.site_id], field="siteId", label="site")
    await refs.require_all(db, Rule, org, [body.rule_id], field="ruleId", label="rule")
    site_rule = await repository.site_rule_of_pair(db, org, body.site_id, body.rule_id)
    if site_rule is not None and site_rule.archived_at is None:
        raise _pair_taken(body.site_id, body.rule_id, site_rule)
    if site_rule is not None:
        return await repository.revive(db, site_rule)
    return {
        "organization_id": org,
        "site_id": body.site_id,
        "rule_id": body.rule_id,
        "created_at": utcnow(),
    }


async def _move(
    db: Executor, caller: Caller, site_rule: Any, body: SiteRuleUpdate
) -> dict[str, Any]:
    org = caller.organization_id
    if body.site_id is not None:
        await refs.require_all(db, Site, org, [body.site_id], field="siteId", label="site")
    if body.rule_id is not None:
        await refs.require_all(db, Rule, org, [body.rule_id], field="ruleId", label="rule")
    site_id = body.site_id if body.site_id is not None else site_rule.site_id
    rule_id = body.rule_id if body.rule_id is not None else site_rule.rule_id
    if (site_id, rule_id) == (site_rule.site_id, site_rule.rule_id):
        return {}
    other = await repository.site_rule_of_pair(db, org, site_id, rule_id)
    if other is not None:
        raise _pair_taken(site_id, rule_id, other)
    if await repository.site_rule_recorded(db, org, site_rule.id):
        # The register must keep saying where and against what each check was made.
        raise Conflict(
            f"Site rule {site_rule.id} is named by interventions: its site and rule stay. "
            "Archive it and apply the rule to the other site instead."
        )
    return {"site_id": site_id, "rule_id": rule_id}


site_rules: Resource[SiteRuleRead, SiteRuleCreate, SiteRuleUpdate] = Resource(
    model=SiteRule,
    label="site rule",
    read=SiteRuleRead,
    filters=repository.FILTERS,
    insert=_apply,
    change=_move,
    unique=_raced,
)
