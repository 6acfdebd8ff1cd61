"""Finding interventions: the filtered, sorted, paginated list and the detailed read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.interventions import repository as repo
from interventions.interventions.lifecycle import Action, allows
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
            .where(
                Intervention.organization_id == caller.organization_id,
                Intervention.deleted_at.is_(None),
                *conditions,
            )
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


def actions_for(intervention: Intervention, caller: Caller) -> ActionsRead:
    """What the caller may do now: the lifecycle table and the caller's role, nothing else."""
    writer = caller.can_write
    status, kind = intervention.status, intervention.type
    return ActionsRead(
        can_be_updated=writer and allows(Action.UPDATE, status, kind),
        can_be_deleted=writer and allows(Action.CANCEL, status, kind),
        can_be_executed=writer
        and (allows(Action.CHECK_IN, status, kind) or allows(Action.EXECUTE, status, kind)),
        can_be_verified=writer
        and (allows(Action.VERIFY, status, kind) or allows(Action.VALIDATE_TRAINING, status, kind)),
    )


async def detail(session: AsyncSession, caller: Caller, intervention_id: int) -> InterventionDetail:
    """One intervention with its sites, site rules, rules, anomalies, history and actions."""
    intervention = await repo.get(session, caller.organization_id, intervention_id)
    read = await repo.read_one(session, intervention)
    sites = (
        await session.execute(
            select(Site.id, Site.name).where(Site.id.in_(read.site_ids)).order_by(Site.id)
        )
    ).all()
    site_rules = (
        await session.execute(
            select(SiteRule.id, SiteRule.site_id, SiteRule.rule_id)
            .where(SiteRule.id.in_(read.site_rule_ids))
            .order_by(SiteRule.id)
        )
    ).all()
    rule_ids = sorted(set(read.rule_ids) | {sr.rule_id for sr in site_rules})
    rules = (
        await session.execute(
            select(Rule.id, Rule.name, Rule.type).where(Rule.id.in_(rule_ids)).order_by(Rule.id)
        )
    ).all()
    anomalies = (
        await session.execute(
            select(Anomaly.id, Anomaly.site_id, Anomaly.title, Anomaly.risk, Anomaly.status)
            .join(InterventionAnomaly, InterventionAnomaly.anomaly_id == Anomaly.id)
            .where(InterventionAnomaly.intervention_id == intervention.id)
            .order_by(Anomaly.id)
        )
    ).all()
    history = (
        await session.execute(
            select(InterventionHistory)
            .where(InterventionHistory.intervention_id == intervention.id)
            .order_by(InterventionHistory.id)
        )
    ).scalars()
    return InterventionDetail(
        **read.model_dump(),
        sites=[SiteSummary(id=s.id, name=s.name) for s in sites],
        site_rules=[
            SiteRuleSummary(id=s.id, site_id=s.site_id, rule_id=s.rule_id) for s in site_rules
        ],
        rules=[RuleSummary(id=r.id, name=r.name, type=r.type) for r in rules],
        anomalies=[
            AnomalySummary(id=a.id, site_id=a.site_id, title=a.title, risk=a.risk, status=a.status)
            for a in anomalies
        ],
        signature_url=read.img_signature,
        history=[
            HistoryEntryRead(
                id=h.id,
                action=h.action,
                user_id=h.user_id,
                changes=h.changes,
                created_at=h.created_at,
            )
            for h in history
        ],
        actions=actions_for(intervention, caller),
    )
