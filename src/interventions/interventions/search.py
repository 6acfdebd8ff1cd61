"""Finding interventions: the filtered, sorted, paginated list and the detailed read."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import Any

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

from interventions.auth.dependencies import Caller
from interventions.db import Executor, Sql, UTCDateTime, any_of, utcnow
from interventions.interventions import presenter
from interventions.interventions import repository as repo
from interventions.interventions.conditions import EntityTags, Unchanged, unchanged
from interventions.interventions.lifecycle import Status, flags
from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
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
from interventions.register import journal
from interventions.register.journal import Subject


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
    overdue: bool | None = None
    sort: Sequence[SortKey] = field(default_factory=lambda: [SortKey.SCHEDULED_START_DESC])


_LIST_FILTERS: dict[str, Any] = {
    "status": Intervention.status,
    "type": Intervention.type,
    "creation_status": Intervention.creation_status,
    "routine_id": Intervention.routine_id,
    "assigned_profile_id": Intervention.assigned_profile_id,
    "company_id": Intervention.company_id,
}
_LINK_FILTERS: dict[str, Any] = {
    "site_id": (InterventionSite, InterventionSite.site_id),
    "site_rule_id": (InterventionSiteRule, InterventionSiteRule.site_rule_id),
    "rule_id": (InterventionRule, InterventionRule.rule_id),
}
_RANGES: dict[str, Any] = {
    "scheduled_from": Intervention.scheduled_start.__ge__,
    "scheduled_to": Intervention.scheduled_start.__le__,
    "actual_from": Intervention.actual_start.__ge__,
    "actual_to": Intervention.actual_start.__le__,
}


# ``overdue=true`` / ``overdue=false``: two shapes, each one constant text.
_FLAGS = ("overdue", "not_overdue")


def _shape(f: InterventionFilters) -> tuple[frozenset[str], tuple[SortKey, ...]]:
    """Which filters are given and the order: what the statement's text depends on."""
    given = {name for name in (*_LIST_FILTERS, *_LINK_FILTERS) if getattr(f, name)}
    given |= {name for name in (*_RANGES, "q") if getattr(f, name) is not None}
    if f.overdue is not None:
        given.add("overdue" if f.overdue else "not_overdue")
    return frozenset(given), tuple(f.sort)


def _params(f: InterventionFilters) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in (*_LIST_FILTERS, *_LINK_FILTERS):
        if getattr(f, name):
            params[name] = list(getattr(f, name))
    for name in _RANGES:
        if getattr(f, name) is not None:
            params[name] = getattr(f, name)
    if f.q is not None:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["q"] = f"%{escaped}%"
    if f.overdue is not None:
        params["now"] = utcnow()
    return params


def _conditions(given: frozenset[str]) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [Intervention.organization_id == bindparam("organization_id")]
    for name, column in _LIST_FILTERS.items():
        if name in given:
            out.append(any_of(column, name))
    for name, (model, column) in _LINK_FILTERS.items():
        if name in given:
            out.append(
                exists().where(
                    model.intervention_id == Intervention.id,
                    model.organization_id == bindparam("organization_id"),
                    any_of(column, name),
                )
            )
    for name, compare in _RANGES.items():
        if name in given:
            out.append(compare(bindparam(name, type_=UTCDateTime())))
    if "status" not in given:
        # Cancelled interventions stay in the register but out of the default list: asking
        # for status 7 shows them.
        out.append(Intervention.status != Status.CANCELLED)
    if "q" in given:
        out.append(Intervention.description.ilike(bindparam("q", type_=String()), escape="\\"))
    now = bindparam("now", type_=UTCDateTime())
    if "overdue" in given:
        out.append(repo.overdue_condition(now))
    if "not_overdue" in given:
        out.append(repo.not_overdue_condition(now))
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


@functools.cache
def _list_statements(given: frozenset[str], sort: tuple[SortKey, ...]) -> tuple[Sql, Sql]:
    """The page and the count for one shape of filters, built and compiled once per shape."""
    conditions = _conditions(given)
    count = Sql(select(func.count()).select_from(Intervention).where(*conditions))
    page = Sql(
        repo.rows_query()
        .where(*conditions)
        .order_by(*_order(sort))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return page, count


async def find(
    db: Executor, caller: Caller, filters: InterventionFilters, page: int, page_size: int
) -> tuple[list[InterventionRead], int]:
    """One page of the caller's interventions and the total: three statements whatever the
    page (the count, the page with the assignees' users, their links)."""
    page_sql, count_sql = _list_statements(*_shape(filters))
    params = {"organization_id": caller.organization_id, **_params(filters)}
    total = await db.scalar(count_sql, **params)
    rows = await db.all(page_sql, limit=page_size, offset=(page - 1) * page_size, **params)
    return await presenter.read_many(db, rows), int(total)


def actions_for(status: int, kind: int, caller: Caller) -> ActionsRead:
    """What the caller may do now: the lifecycle table and the caller's role, nothing else."""
    return ActionsRead(**flags(status, kind, writer=caller.can_write))


# The detailed read is three statements after authentication, each built once: the
# intervention with its assignee's user (``repo.get``), everything it links to, and its history.


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


@dataclass
class Linked:
    """What an intervention links to, summarised for one read."""

    sites: list[SiteSummary]
    site_rules: list[SiteRuleSummary]
    rules: list[RuleSummary]
    anomalies: list[AnomalySummary]
    link_sets: dict[str, list[int]]


async def linked(db: Executor, organization_id: int, intervention_id: int) -> Linked:
    """The intervention's sites, site rules, rules and anomalies (one statement), sorted by
    id, and its four link sets."""
    sites: list[SiteSummary] = []
    site_rules: list[SiteRuleSummary] = []
    rules: dict[int, RuleSummary] = {}
    rule_ids: list[int] = []
    anomalies: list[AnomalySummary] = []
    for member, id_, a, b, c, label in await db.all(
        _LINKED, id=intervention_id, organization_id=organization_id
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
    by_id = attrgetter("id")
    sites.sort(key=by_id)
    site_rules.sort(key=by_id)
    anomalies.sort(key=by_id)
    return Linked(
        sites=sites,
        site_rules=site_rules,
        rules=sorted(rules.values(), key=by_id),
        anomalies=anomalies,
        link_sets={
            "site_ids": [s.id for s in sites],
            "site_rule_ids": [s.id for s in site_rules],
            "rule_ids": sorted(rule_ids),
            "anomaly_ids": [a.id for a in anomalies],
        },
    )


async def detail(
    db: Executor,
    caller: Caller,
    intervention_id: int,
    *,
    if_none_match: EntityTags | None = None,
) -> InterventionDetail | Unchanged:
    """One intervention with its sites, site rules, rules, anomalies, history and actions;
    ``Unchanged`` (and nothing more read) when ``If-None-Match`` names its version."""
    row = await repo.get(db, caller.organization_id, intervention_id)
    same = unchanged(row, if_none_match)
    if same is not None:
        return same
    org = caller.organization_id
    found = await linked(db, org, intervention_id)
    history = await journal.entries_about(db, org, Subject.INTERVENTION, intervention_id)
    fields = presenter.read_fields(row, found.link_sets)
    return InterventionDetail(
        **fields,
        sites=found.sites,
        site_rules=found.site_rules,
        rules=found.rules,
        anomalies=found.anomalies,
        signature_url=fields["img_signature"],
        history=[
            HistoryEntryRead(
                id=h.seq,
                action=h.action,
                user_id=h.actor.get("userId"),
                actor=h.actor,
                changes=h.changes,
                created_at=h.recorded_at,
            )
            for h in history
        ],
        actions=actions_for(row.status, row.type, caller),
    )
