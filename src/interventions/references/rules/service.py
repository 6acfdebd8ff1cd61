"""Rule use cases: the shared ones; archiving a rule archives its site rules."""

from __future__ import annotations

from interventions.references.models import Rule
from interventions.references.resource import Resource
from interventions.references.rules import repository
from interventions.references.rules.schemas import RuleCreate, RuleRead, RuleUpdate

rules: Resource[RuleRead, RuleCreate, RuleUpdate] = Resource(
    model=Rule,
    label="rule",
    read=RuleRead,
    filters=repository.FILTERS,
    cascade=repository.archive_site_rules,
)
