"""Every statement the printable register runs: one site of one organisation, read in the
register's order. Long lists (checks) are read in batches by keyset, so that a register of
any length is never held whole in memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select

from interventions.db import Executor, Sql, any_of, table_of
from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.references.models import (
    Anomaly,
    Company,
    Organization,
    Routine,
    RoutineSiteRule,
    Rule,
    Site,
    SiteRule,
)
from interventions.storage.models import StoredFile

_I = table_of(Intervention).c
_IS = table_of(InterventionSite).c
_ISR = table_of(InterventionSiteRule).c
_IA = table_of(InterventionAnomaly).c
_A = table_of(Anomaly).c
_C = table_of(Company).c
_O = table_of(Organization).c
_R = table_of(Rule).c
_RO = table_of(Routine).c
_RSR = table_of(RoutineSiteRule).c
_S = table_of(Site).c
_SR = table_of(SiteRule).c
_F = table_of(StoredFile).c

ORG: Any = bindparam("organization_id")
PREVENTIVE, CURATIVE, TRAINING = 1, 2, 3
# Statuses (``between`` keeps each statement's text constant): executed = the provider
# signed (4), then the client accepted (5) or rejected (6); not executed = 1, 2, 3.
BATCH = 200


def _after(date: Any) -> Any:
    """The keyset: rows after (``after_start``, ``after_id``) in (date, id) order."""
    return or_(
        date > bindparam("after_start"),
        and_(date == bindparam("after_start"), _I.id > bindparam("after_id")),
    )


def _in_period(column: Any) -> Any:
    return and_(column >= bindparam("start"), column < bindparam("end"))


_SITE = Sql(
    select(_S.id, _S.name, _S.archived_at, _O.name.label("organization_name"))
    .join(table_of(Organization), _O.id == _S.organization_id)
    .where(_S.organization_id == ORG, _S.id == bindparam("site_id"))
)

# The site's rules (archived ones too: their past checks stay in the register).
_RULES = Sql(
    select(_SR.id.label("site_rule_id"), _R.id, _R.name, _R.type, _SR.archived_at)
    .join(table_of(Rule), and_(_R.id == _SR.rule_id, _R.organization_id == ORG))
    .where(_SR.organization_id == ORG, _SR.site_id == bindparam("site_id"))
    .order_by(_R.type, _R.name, _R.id)
)

_CHECK_COLUMNS = (
    _I.id,
    _I.status,
    _I.check_type,
    _I.actual_start,
    _I.actual_end,
    _I.provider_name,
    _I.provider_email,
    _I.provider_action_comment,
    _I.provider_general_comment,
    _I.decision_comment,
    _I.verified_at,
    _I.description,
    _C.name.label("company_name"),
    _F.id.label("file_id"),
    _F.organization_id.label("file_organization_id"),
    _F.mime_type,
    _F.size,
    _F.storage_key,
    _F.uploaded_at,
    _F.created_at.label("file_created_at"),
)


def _with_company_and_signature(stmt: Any) -> Any:
    return stmt.outerjoin(
        table_of(Company), and_(_C.id == _I.company_id, _C.organization_id == ORG)
    ).outerjoin(
        table_of(StoredFile), and_(_F.id == _I.signature_file_id, _F.organization_id == ORG)
    )


# The executed checks of one site rule in the period, by execution date, after a keyset.
_CHECKS = Sql(
    _with_company_and_signature(
        select(*_CHECK_COLUMNS).select_from(
            table_of(InterventionSiteRule).join(
                table_of(Intervention),
                and_(_I.id == _ISR.intervention_id, _I.organization_id == ORG),
            )
        )
    )
    .where(
        _ISR.organization_id == ORG,
        _ISR.site_rule_id == bindparam("site_rule_id"),
        _I.type == PREVENTIVE,
        _I.status.between(4, 6),
        _in_period(_I.actual_start),
        _after(_I.actual_start),
    )
    .order_by(_I.actual_start, _I.id)
    .limit(BATCH)
)

# The observations (anomalies) raised by some checks.
_RAISED = Sql(
    select(_A.raised_by_intervention_id, _A.id, _A.title, _A.risk, _A.status, _A.resolved_at)
    .where(_A.organization_id == ORG, any_of(_A.raised_by_intervention_id, "ids"))
    .order_by(_A.raised_by_intervention_id, _A.id)
)

# Interventions of a kind on the site (curative works, drills) in the period, by date.
_ON_SITE = table_of(InterventionSite).join(
    table_of(Intervention), and_(_I.id == _IS.intervention_id, _I.organization_id == ORG)
)
_WORKS = Sql(
    _with_company_and_signature(select(*_CHECK_COLUMNS, _I.scheduled_start).select_from(_ON_SITE))
    .where(
        _IS.organization_id == ORG,
        _IS.site_id == bindparam("site_id"),
        _I.type == CURATIVE,
        _I.status.between(4, 6),
        _in_period(_I.actual_start),
        _after(_I.actual_start),
    )
    .order_by(_I.actual_start, _I.id)
    .limit(BATCH)
)

# The anomalies some curative works were linked to; ``resolved`` when the work lifted them.
_LIFTED = Sql(
    select(_IA.intervention_id, _A.id, _A.title, _A.risk, _A.status, _A.resolved_at)
    .join(table_of(Anomaly), and_(_A.id == _IA.anomaly_id, _A.organization_id == ORG))
    .where(_IA.organization_id == ORG, any_of(_IA.intervention_id, "ids"))
    .order_by(_IA.intervention_id, _A.id)
)

# Drills: validated ones may never have been checked in (validated by the client), so their
# date is the actual start, else the scheduled one.
_DRILL_DATE = func.coalesce(_I.actual_start, _I.scheduled_start)
_DRILLS = Sql(
    select(
        _I.id,
        _I.status,
        _DRILL_DATE.label("held_at"),
        _I.attendee_count,
        _I.description,
        _I.provider_name,
        _I.provider_general_comment,
        _I.decision_comment,
        _C.name.label("company_name"),
    )
    .select_from(_ON_SITE)
    .outerjoin(table_of(Company), and_(_C.id == _I.company_id, _C.organization_id == ORG))
    .where(
        _IS.organization_id == ORG,
        _IS.site_id == bindparam("site_id"),
        _I.type == TRAINING,
        _I.status.between(4, 5),
        _in_period(_DRILL_DATE),
        _after(_DRILL_DATE),
    )
    .order_by(_DRILL_DATE, _I.id)
    .limit(BATCH)
)

# Observations still open (open or in repair) on the site, the riskiest and oldest first.
_OPEN = Sql(
    select(_A.id, _A.title, _A.risk, _A.status, _A.created_at, _A.raised_by_intervention_id)
    .where(_A.organization_id == ORG, _A.site_id == bindparam("site_id"), _A.status <= 1)
    .order_by(_A.risk.desc(), _A.created_at, _A.id)
    .limit(bindparam("limit"))
)

# The routines planning checks on the site's site rules, with those site rules' rules.
_ROUTINES = Sql(
    select(
        _RO.id,
        _RO.name,
        _RO.rrule,
        _RO.dtstart,
        _RO.created_at,
        _SR.id.label("site_rule_id"),
        _R.name.label("rule_name"),
    )
    .select_from(
        table_of(RoutineSiteRule)
        .join(table_of(Routine), and_(_RO.id == _RSR.routine_id, _RO.organization_id == ORG))
        .join(table_of(SiteRule), and_(_SR.id == _RSR.site_rule_id, _SR.organization_id == ORG))
        .join(table_of(Rule), and_(_R.id == _SR.rule_id, _R.organization_id == ORG))
    )
    .where(
        _RSR.organization_id == ORG,
        _SR.site_id == bindparam("site_id"),
        _RO.archived_at.is_(None),
        _SR.archived_at.is_(None),
    )
    .order_by(_R.name, _RO.name, _RO.id)
)

# Occurrences of a routine on a site rule whose scheduled end passed without execution.
_MISSED = Sql(
    select(_I.id, _I.scheduled_start, _I.scheduled_end, _I.status)
    .select_from(
        table_of(InterventionSiteRule).join(
            table_of(Intervention), and_(_I.id == _ISR.intervention_id, _I.organization_id == ORG)
        )
    )
    .where(
        _ISR.organization_id == ORG,
        _ISR.site_rule_id == bindparam("site_rule_id"),
        _I.routine_id == bindparam("routine_id"),
        _I.status.between(1, 3),
        _I.scheduled_end < bindparam("as_of"),
    )
    .order_by(_I.scheduled_end, _I.id)
)

# The last executed check of a site rule before a date (whatever planned it).
_LAST_CHECK = Sql(
    _with_company_and_signature(
        select(*_CHECK_COLUMNS).select_from(
            table_of(InterventionSiteRule).join(
                table_of(Intervention),
                and_(_I.id == _ISR.intervention_id, _I.organization_id == ORG),
            )
        )
    )
    .where(
        _ISR.organization_id == ORG,
        _ISR.site_rule_id == bindparam("site_rule_id"),
        _I.type == PREVENTIVE,
        _I.status.between(4, 6),
        _I.actual_start < bindparam("as_of"),
    )
    .order_by(_I.actual_start.desc(), _I.id.desc())
    .limit(1)
)

# The organisation's sites (for a pack of every site).
_SITES = Sql(
    select(_S.id).where(_S.organization_id == ORG, _S.archived_at.is_(None)).order_by(_S.id)
)

_FAR_PAST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


async def site(db: Executor, organization_id: int, site_id: int) -> Any:
    """The site with its organisation's name, or ``None`` when it is not the organisation's."""
    return await db.first(_SITE, organization_id=organization_id, site_id=site_id)


async def site_ids(db: Executor, organization_id: int) -> list[int]:
    return [row.id for row in await db.all(_SITES, organization_id=organization_id)]


async def rules(db: Executor, organization_id: int, site_id: int) -> list[Any]:
    return await db.all(_RULES, organization_id=organization_id, site_id=site_id)


async def _batches(db: Executor, sql: Sql, date: str, **params: Any) -> Any:
    """The rows of a keyset-paged statement, batch by batch (lists of records)."""
    after_start, after_id = _FAR_PAST, 0
    while True:
        rows = await db.all(sql, after_start=after_start, after_id=after_id, **params)
        if rows:
            yield rows
        if len(rows) < BATCH:
            return
        after_start, after_id = getattr(rows[-1], date), rows[-1].id


def checks(
    db: Executor, organization_id: int, site_rule_id: int, start: dt.datetime, end: dt.datetime
) -> Any:
    """Batches of the executed checks of a site rule started in [start, end)."""
    return _batches(
        db,
        _CHECKS,
        "actual_start",
        organization_id=organization_id,
        site_rule_id=site_rule_id,
        start=start,
        end=end,
    )


def works(
    db: Executor, organization_id: int, site_id: int, start: dt.datetime, end: dt.datetime
) -> Any:
    """Batches of the executed curative works on the site started in [start, end)."""
    return _batches(
        db,
        _WORKS,
        "actual_start",
        organization_id=organization_id,
        site_id=site_id,
        start=start,
        end=end,
    )


def drills(
    db: Executor, organization_id: int, site_id: int, start: dt.datetime, end: dt.datetime
) -> Any:
    """Batches of the drills held on the site in [start, end)."""
    return _batches(
        db,
        _DRILLS,
        "held_at",
        organization_id=organization_id,
        site_id=site_id,
        start=start,
        end=end,
    )


async def raised_by(
    db: Executor, organization_id: int, intervention_ids: Sequence[int]
) -> dict[int, list[Any]]:
    """The anomalies each check raised."""
    found: dict[int, list[Any]] = {}
    if intervention_ids:
        for row in await db.all(
            _RAISED, organization_id=organization_id, ids=list(intervention_ids)
        ):
            found.setdefault(row.raised_by_intervention_id, []).append(row)
    return found


async def lifted_by(
    db: Executor, organization_id: int, intervention_ids: Sequence[int]
) -> dict[int, list[Any]]:
    """The anomalies each curative work was linked to."""
    found: dict[int, list[Any]] = {}
    if intervention_ids:
        for row in await db.all(
            _LIFTED, organization_id=organization_id, ids=list(intervention_ids)
        ):
            found.setdefault(row.intervention_id, []).append(row)
    return found


async def open_observations(
    db: Executor, organization_id: int, site_id: int, limit: int
) -> list[Any]:
    return await db.all(_OPEN, organization_id=organization_id, site_id=site_id, limit=limit)


async def routines(db: Executor, organization_id: int, site_id: int) -> list[Any]:
    return await db.all(_ROUTINES, organization_id=organization_id, site_id=site_id)


async def missed(
    db: Executor, organization_id: int, routine_id: int, site_rule_id: int, as_of: dt.datetime
) -> list[Any]:
    return await db.all(
        _MISSED,
        organization_id=organization_id,
        routine_id=routine_id,
        site_rule_id=site_rule_id,
        as_of=as_of,
    )


async def last_check(
    db: Executor, organization_id: int, site_rule_id: int, as_of: dt.datetime
) -> Any:
    return await db.first(
        _LAST_CHECK, organization_id=organization_id, site_rule_id=site_rule_id, as_of=as_of
    )
