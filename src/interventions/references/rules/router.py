"""``/rules/v1/rs``: the organisation's rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from interventions.references.endpoints import Operation, Operations, free_text, resource_router
from interventions.references.rules.schemas import RuleCreate, RuleUpdate
from interventions.references.rules.service import rules

TypeFilter = Annotated[
    int | None, Query(alias="type", ge=1, le=2, description="1 check/maintenance · 2 training")
]

router = resource_router(
    rules,
    prefix="/rules/v1/rs",
    tag="rules",
    path_id="ruleId",
    bodies=(RuleCreate, RuleUpdate),
    filters={"type_": TypeFilter, "q": free_text()},
    operations=Operations(
        list=Operation("listRules", "List rules"),
        get=Operation("getRule", "Read one rule"),
        create=Operation("createRule", "Create a rule"),
        update=Operation("updateRule", "Update a rule"),
        archive=Operation("archiveRule", "Archive a rule and its site rules"),
    ),
)
