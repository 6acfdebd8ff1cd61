"""Finding interventions: the filtered, sorted, paginated list and the detailed read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.auth.models import Profile
from interventions.db import Executor, Sql, table_of
from interventions.errors import NotFound
from interventions.interventions import repository as repo
from interventions.interventions.lifecycle import Action, Status, allows
from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
    InterventionHistory,
    InterventionRule,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.interventions.schemas import (
    ActionsRead,
    AnomalySummary,
    HistoryEntryRead,
    InterventionDetail,
    InterventionRead,
    RuleSummary,
    SiteRuleSummary,
    SiteSummary,
)
from interventions.references.models import Anomaly, Rule, Site, SiteRule


class SortKey(StrEnum):
    SCHEDULED_START = "scheduledStart"
    SCHEDULED_START_DESC = "-scheduledStart"
    ACTUAL_START = "actualStart"
    ACTUAL_START_DESC = "-actualStart"
    CREATED_AT = "createdAt"
    CREATED_AT_DESC = "-createdAt"
    UPDATED_AT = "updatedAt"
    UPDATED_AT_DESC = "-updatedAt"
    STATUS = "status"
    STATUS_DESC = "-status"
    ID = "id"
    ID_DESC = "-id"


_SORT_COLUMNS: dict[str, Any] = {
    "scheduledStart": Intervention.scheduled_start,
    "actualStart": Intervention.actual_start,
    "createdAt": Intervention.created_at,
    "updatedAt": Intervention.updated_at,
    "status": Intervention.status,
    "id": Intervention.id,
}


@dataclass
class InterventionFilters:
    status: Sequence[int] = ()
    type: Sequence[int] = ()
    creation_status: Sequence[int] = ()
    site_id: Sequence[int] = ()
    site_rule_id: Sequence[int] = ()
    rule_id: Sequence[int] = ()
    routine_id: Sequence[int] = ()
    assigned_profile_id: Sequence[int] = ()
    company_id: Sequence[int] = ()
    scheduled_from: dt.datetime | None = None
    scheduled_to: dt.datetime | None = None
    actual_from: dt.datetime | None = None
    actual_to: dt.datetime | None = None
    q: str | None = None
    sort: Sequence[SortKey] = field(default_factory=lambda: [SortKey.SCHEDULED_START_DESC])


def _linked(model: Any, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    return exists().where(model.intervention_id == Intervention.id, column.in_(ids))


def _conditions(f: InterventionFilters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    for values, column in (
        (f.status, Intervention.status),
        (f.type, Intervention.type),
        (f.creation_status, Intervention.creation_status),
        (f.routine_id, Intervention.routine_id),
        (f.assigned_profile_id, Intervention.assigned_profile_id),
        (f.company_id, Intervention.company_id),
    ):
        if values:
            out.append(column.in_(values))
    if f.site_id:
        out.append(_linked(InterventionSite, InterventionSite.site_id, f.site_id))
    if f.site_rule_id:
        out.append(_linked(InterventionSiteRule, InterventionSiteRule.site_rule_id, f.site_rule_id))
    if f.rule_id:
        out.append(_linked(InterventionRule, InterventionRule.rule_id, f.rule_id))
    if f.scheduled_from is not None:
        out.append(Intervention.scheduled_start >= f.scheduled_from)
    if f.scheduled_to is not None:
        out.append(Intervention.scheduled_start <= f.scheduled_to)
    if f.actual_from is not None:
        out.append(Intervention.actual_start >= f.actual_from)
    if f.actual_to is not None:
        out.append(Intervention.actual_start <= f.actual_to)
    if not f.status:
        # Cancelled interventions stay in the register but out of the default list: asking
        # for status 7 shows them.
        out.append(Intervention.status != Status.CANCELLED)
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(Intervention.description.ilike(f"%{escaped}%", escape="\\"))
    return out


def _order(keys: Sequence[SortKey]) -> list[Any]:
    order: list[Any] = []
    for key in keys:
        column = _SORT_COLUMNS[key.removeprefix("-")]
        order.append(
            column.desc().nulls_last() if key.startswith("-") else column.asc().nulls_last()
        )
    order.append(Intervention.id.desc())  # stable pages
    return order


async def find(
    session: AsyncSession, caller: Caller, filters: InterventionFilters, page: int, page_size: int
) -> tuple[list[InterventionRead], int]:
    """One page of the caller's interventions and the total: four statements whatever the page."""
    conditions = _conditions(filters)
    base = repo.readable(caller.organization_id).where(*conditions)
    total = (
        await session.execute(
            select(func.count())
            .select_from(Intervention)
            .where(Intervention.organization_id == caller.organization_id, *conditions)
        )
    ).scalar_one()
    rows = list(
        (
            await session.execute(
                base.order_by(*_order(filters.sort)).offset((page - 1) * page_size).limit(page_size)
            )
        ).scalars()
    )
    return await repo.read_many(session, rows), int(total)


def actions_for(status: int, kind: int, caller: Caller) -> ActionsRead:
    """What the caller may do now: the lifecycle table and the caller's role, nothing else."""
    writer = caller.can_write
    return ActionsRead(
        can_be_updated=writer and allows(Action.UPDATE, status, kind),
        can_be_deleted=writer and allows(Action.CANCEL, status, kind),
        can_be_executed=writer
        and (allows(Action.CHECK_IN, status, kind) or allows(Action.EXECUTE, status, kind)),
        can_be_verified=writer
        and (allows(Action.VERIFY, status, kind) or allows(Action.VALIDATE_TRAINING, status, kind)),
    )


# The detailed read is three statements after authentication, each built once: the
# intervention with its assignee's user, everything it links to, and its history.
_DETAIL = Sql(
    select(*table_of(Intervention).c, Profile.user_id.label("assigned_user_id"))
    .outerjoin(
        Profile,
        and_(
            Profile.id == Intervention.assigned_profile_id,
            Profile.organization_id == bindparam("organization_id"),
        ),
    )
    .where(
        Intervention.organization_id == bindparam("organization_id"),
        Intervention.id == bindparam("id"),
    )
)


def _no_int() -> Any:
    return cast(null(), Integer)


def _ours(*models: Any) -> ColumnElement[bool]:
    """Every table of a statement names the organisation (tests/test_tenant_scoping.py)."""
    return and_(*(m.organization_id == bindparam("organization_id") for m in models))


# One row per linked site, site rule, rule (directly, or through a site rule) and anomaly:
# (member, id, a, b, c, label) where a, b, c and label depend on the member.
_LINKED = Sql(
    union_all(
        select(literal("site"), Site.id, _no_int(), _no_int(), _no_int(), Site.name)
        .join(InterventionSite, InterventionSite.site_id == Site.id)
        .where(InterventionSite.intervention_id == bindparam("id"), _ours(InterventionSite, Site)),
        select(
            literal("site_rule"),
            SiteRule.id,
            SiteRule.site_id,
            SiteRule.rule_id,
            _no_int(),
            cast(null(), String),
        )
        .join(InterventionSiteRule, InterventionSiteRule.site_rule_id == SiteRule.id)
        .where(
            InterventionSiteRule.intervention_id == bindparam("id"),
            _ours(InterventionSiteRule, SiteRule),
        ),
        select(literal("rule"), Rule.id, Rule.type, _no_int(), _no_int(), Rule.name)
        .join(InterventionRule, InterventionRule.rule_id == Rule.id)
        .where(InterventionRule.intervention_id == bindparam("id"), _ours(InterventionRule, Rule)),
        select(literal("site_rule_rule"), Rule.id, Rule.type, _no_int(), _no_int(), Rule.name)
        .join(SiteRule, SiteRule.rule_id == Rule.id)
        .join(InterventionSiteRule, InterventionSiteRule.site_rule_id == SiteRule.id)
        .where(
            InterventionSiteRule.intervention_id == bindparam("id"),
            _ours(InterventionSiteRule, SiteRule, Rule),
        ),
        select(
            literal("anomaly"),
            Anomaly.id,
            Anomaly.site_id,
            Anomaly.risk,
            Anomaly.status,
            Anomaly.title,
        )
        .join(InterventionAnomaly, InterventionAnomaly.anomaly_id == Anomaly.id)
        .where(
            InterventionAnomaly.intervention_id == bindparam("id"),
            _ours(InterventionAnomaly, Anomaly),
        ),
    )
)

_HISTORY = Sql(
    select(
        InterventionHistory.id,
        InterventionHistory.action,
        InterventionHistory.user_id,
        InterventionHistory.changes,
        InterventionHistory.created_at,
    )
    .where(InterventionHistory.intervention_id == bindparam("id"), _ours(InterventionHistory))
    .order_by(InterventionHistory.id)
)


async def detail(db: Executor, caller: Caller, intervention_id: int) -> InterventionDetail:
    """One intervention with its sites, site rules, rules, anomalies, history and actions."""
    row = await db.first(_DETAIL, organization_id=caller.organization_id, id=intervention_id)
    if row is None:
        raise NotFound(f"No intervention {intervention_id}.")
    sites: list[SiteSummary] = []
    site_rules: list[SiteRuleSummary] = []
    rules: dict[int, RuleSummary] = {}
    rule_ids: list[int] = []
    anomalies: list[AnomalySummary] = []
    org = caller.organization_id
    for member, id_, a, b, c, label in await db.all(
        _LINKED, id=intervention_id, organization_id=org
    ):
        if member == "site":
            sites.append(SiteSummary(id=id_, name=label))
        elif member == "site_rule":
            site_rules.append(SiteRuleSummary(id=id_, site_id=a, rule_id=b))
        elif member == "anomaly":
            anomalies.append(AnomalySummary(id=id_, site_id=a, title=label, risk=b, status=c))
        else:
            if member == "rule":
                rule_ids.append(id_)
            rules[id_] = RuleSummary(id=id_, name=label, type=a)
    history = await db.all(_HISTORY, id=intervention_id, organization_id=org)
    by_id = attrgetter("id")
    sites.sort(key=by_id)
    site_rules.sort(key=by_id)
    anomalies.sort(key=by_id)
    link_sets = {
        "site_ids": [s.id for s in sites],
        "site_rule_ids": [s.id for s in site_rules],
        "rule_ids": sorted(rule_ids),
        "anomaly_ids": [a.id for a in anomalies],
    }
    fields = repo.read_fields(row, link_sets, row.assigned_user_id)
    return InterventionDetail(
        **fields,
        sites=sites,
        site_rules=site_rules,
        rules=sorted(rules.values(), key=by_id),
        anomalies=anomalies,
        signature_url=fields["img_signature"],
        history=[
            HistoryEntryRead(
                id=h.id,
                action=h.action,
                user_id=h.user_id,
                # Entries written before the wire names were used are read with them too.
                changes={to_camel(k): v for k, v in h.changes.items()},
                created_at=h.created_at,
            )
            for h in history
        ],
        actions=actions_for(row.status, row.type, caller),
    )
