"""Every statement over interventions, their links and their history: tenant-scoped, built
once, run by the executor (``db.Sql``). Rows come back as records (``Row``: the
intervention's columns and its assignee's user); the service computes changes and writes
them with ``update``, never by mutating a record.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, namedtuple
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, literal, or_, select, union_all, update
from sqlalchemy.dialects import postgresql

from interventions.auth.models import Profile, User
from interventions.db import ID, Executor, Sql, UTCDateTime, any_of, id_rows, table_of, utcnow
from interventions.errors import NotFound
from interventions.interventions.lifecycle import OVERDUE_STATUSES, Kind, Status
from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
    InterventionRule,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.references.models import (
    Anomaly,
    Routine,
    RoutineSiteRule,
    Site,
    SiteRule,
)
from interventions.register import journal
from interventions.register.journal import Entry, Subject

INTERVENTIONS = table_of(Intervention)
_I = INTERVENTIONS.c
_PROFILES = table_of(Profile)

# member of the wire form → (link table, its column naming the linked row)
LINK_TABLES: dict[str, Any] = {
    "site_ids": (table_of(InterventionSite), "site_id"),
    "site_rule_ids": (table_of(InterventionSiteRule), "site_rule_id"),
    "rule_ids": (table_of(InterventionRule), "rule_id"),
    "anomaly_ids": (table_of(InterventionAnomaly), "anomaly_id"),
}

KIND_LABELS = {
    Kind.PREVENTIVE: "preventive",
    Kind.CURATIVE: "curative",
    Kind.TRAINING: "training exercise",
}

# Every column but the id, as written by ``insert`` and ``update``.
COLUMNS = tuple(c.key for c in INTERVENTIONS.c if c.key != "id")
# What an update never changes.
_FIXED = frozenset({"organization_id", "type", "created_at", "created_by_user_id"})


def ours() -> Any:
    """The organisation-scoped form every statement over interventions starts from."""
    return _I.organization_id == bindparam("organization_id")


def rows_query() -> Any:
    """The intervention's columns and its assignee's user (a profile of the organisation):
    what every read of whole interventions selects (``Row``)."""
    return select(*INTERVENTIONS.c, _PROFILES.c.user_id.label("assigned_user_id")).outerjoin(
        _PROFILES,
        and_(
            _PROFILES.c.id == _I.assigned_profile_id,
            _PROFILES.c.organization_id == bindparam("organization_id"),
        ),
    )


_BY_ID = Sql(rows_query().where(ours(), _I.id == bindparam("id")))
# FOR UPDATE OF the intervention only: the assignee's profile is on the outer join's
# nullable side, which PostgreSQL does not lock (SQLite serialises writers anyway).
_BY_ID_FOR_UPDATE = Sql(
    rows_query().where(ours(), _I.id == bindparam("id")).with_for_update(of=INTERVENTIONS)
)
_INSERT = Sql(
    insert(INTERVENTIONS).values({key: bindparam(key) for key in COLUMNS}).returning(_I.id)
)
# Every changeable column at once: one statement text whatever changed. Conditional on the
# status and the version read, so that of two writers racing past a lock that is not there
# (SQLite), one wins, and that a write checked against a version (If-Match) lands on it.
_UPDATE = Sql(
    update(INTERVENTIONS)
    .where(
        ours(),
        _I.id == bindparam("id"),
        _I.status == bindparam("was"),
        _I.version == bindparam("was_version"),
    )
    .values({key: bindparam(key) for key in COLUMNS if key not in _FIXED})
)


_ANY_IN = Sql(select(_I.id).where(ours()).limit(1))


async def any_in(db: Executor, organization_id: int) -> bool:
    """Whether the organisation has any intervention at all."""
    return await db.first(_ANY_IN, organization_id=organization_id) is not None


async def get(
    db: Executor,
    organization_id: int,
    intervention_id: int,
    kind: Kind | None = None,
    *,
    lock: bool = False,
) -> Any:
    """The intervention (a ``Row``), else 404; ``lock``: row-locked until the end of the
    transaction. An intervention of another kind than the path names is a 404 too."""
    row = await db.first(
        _BY_ID_FOR_UPDATE if lock else _BY_ID, organization_id=organization_id, id=intervention_id
    )
    if row is None or (kind is not None and row.type != kind):
        label = KIND_LABELS[kind] + " intervention" if kind is not None else "intervention"
        raise NotFound(f"No {label} {intervention_id}.")
    return row


async def get_for_update(
    db: Executor, organization_id: int, intervention_id: int, kind: Kind | None = None
) -> Any:
    return await get(db, organization_id, intervention_id, kind, lock=True)


async def insert_intervention(db: Executor, values: dict[str, Any]) -> Any:
    """Insert a new intervention from every column's value; the row as ``get`` reads it
    (``assigned_user_id`` given by the caller, who resolved the assignee)."""
    params = {key: values.get(key) for key in COLUMNS}
    params["version"] = 1
    new_id = await db.scalar(_INSERT, **params)
    return row_of(id=new_id, assigned_user_id=values.get("assigned_user_id"), **params)


async def write(db: Executor, row: Any, changes: dict[str, Any]) -> tuple[Any, bool]:
    """Write ``changes`` over ``row`` (and the next version); the row as it now is, and
    whether it was still in the status and at the version it was read in (``False``:
    nothing was written)."""
    new = row._replace(**changes, version=row.version + 1)
    values = {key: getattr(new, key) for key in COLUMNS if key not in _FIXED}
    count = await db.execute(
        _UPDATE,
        organization_id=row.organization_id,
        id=row.id,
        was=row.status,
        was_version=row.version,
        **values,
    )
    return new, count == 1


_ROW_FIELDS = (*(c.key for c in INTERVENTIONS.c), "assigned_user_id")
Row = namedtuple("Row", _ROW_FIELDS)  # type: ignore[misc]  # the fields of ``_BY_ID``'s rows


def row_of(**values: Any) -> Any:
    """A ``Row`` made of the values (a new intervention, before anything reads it)."""
    return Row(**{key: values.get(key) for key in _ROW_FIELDS})


_IDS = id_rows("ids")
# One statement whatever the number of ids: INSERT … SELECT from the list parameter.
_LINK_INSERTS = {
    member: Sql(
        insert(table).from_select(
            ["intervention_id", column, "organization_id"],
            select(
                bindparam("intervention_id", type_=ID),
                _IDS.c.value,
                bindparam("organization_id", type_=ID),
            ).select_from(_IDS),
        )
    )
    for member, (table, column) in LINK_TABLES.items()
}
_LINK_DELETES = {
    member: Sql(
        delete(table).where(
            table.c.organization_id == bindparam("organization_id"),
            table.c.intervention_id == bindparam("intervention_id"),
        )
    )
    for member, (table, _) in LINK_TABLES.items()
}


async def add_links(db: Executor, row: Any, member: str, ids: Iterable[int]) -> None:
    """Link ``ids`` (sites, site rules, rules or anomalies), in one statement."""
    unique = list(dict.fromkeys(ids))
    if unique:
        await db.execute(
            _LINK_INSERTS[member],
            intervention_id=row.id,
            organization_id=row.organization_id,
            ids=unique,
        )


async def replace_links(db: Executor, row: Any, member: str, ids: Sequence[int]) -> None:
    await db.execute(
        _LINK_DELETES[member], organization_id=row.organization_id, intervention_id=row.id
    )
    await add_links(db, row, member, ids)


_LINKS = Sql(
    union_all(
        *(
            select(
                literal(member).label("member"),
                table.c.intervention_id,
                table.c[column].label("ref"),
            ).where(
                table.c.organization_id == bindparam("organization_id"),
                any_of(table.c.intervention_id, "ids"),
            )
            for member, (table, column) in LINK_TABLES.items()
        )
    )
)


async def links(
    db: Executor, organization_id: int, intervention_ids: Sequence[int]
) -> dict[int, dict[str, list[int]]]:
    """All four link sets of the interventions, in one statement."""
    out: dict[int, dict[str, list[int]]] = defaultdict(no_links)
    if not intervention_ids:
        return out
    rows = await db.all(_LINKS, organization_id=organization_id, ids=list(intervention_ids))
    for member, intervention_id, ref in rows:
        out[intervention_id][member].append(ref)
    for value in out.values():
        for ids in value.values():
            ids.sort()
    return out


def no_links() -> dict[str, list[int]]:
    return {member: [] for member in LINK_TABLES}


_PROFILE_USERS = Sql(
    select(_PROFILES.c.id, _PROFILES.c.user_id).where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        any_of(_PROFILES.c.id, "ids"),
    )
)


async def profile_users(
    db: Executor, organization_id: int, profile_ids: Iterable[int | None]
) -> dict[int, int]:
    """The user of each of the organisation's profiles among ``profile_ids``."""
    wanted = sorted({p for p in profile_ids if p is not None})
    if not wanted:
        return {}
    rows = await db.all(_PROFILE_USERS, organization_id=organization_id, ids=wanted)
    return {pid: uid for pid, uid in rows}


async def record_history(
    db: Executor,
    row: Any,
    *,
    actor: dict[str, Any],
    action: str,
    changes: dict[str, tuple[Any, Any]] | dict[str, Any],
) -> None:
    """Record the change in the organisation's journal (``register.journal``: appended when
    the transaction commits); see ``journal.payload`` for ``changes``."""
    journal.record(
        db,
        row.organization_id,
        Entry(action, Subject.INTERVENTION, row.id, journal.payload(changes), actor),
    )


def record_anomaly_moves(
    db: Executor,
    organization_id: int,
    anomaly_ids: Iterable[int],
    *,
    intervention_id: int,
    action: str,
    source: int,
    target: int,
    actor: dict[str, Any],
) -> None:
    """One journal entry per anomaly the intervention moved."""
    changes = {"status": {"from": source, "to": target}, "interventionId": intervention_id}
    for anomaly_id in sorted(anomaly_ids):
        journal.record(
            db, organization_id, Entry(action, Subject.ANOMALY, anomaly_id, changes, actor)
        )


# --- what the e-mails about an intervention say ------------------------------------------------

_USERS = table_of(User)
_SITES = table_of(Site)
_LINKED_SITES = LINK_TABLES["site_ids"][0]

_PROFILE_ADDRESSES = Sql(
    select(_PROFILES.c.id, _USERS.c.email, _USERS.c.first_name, _USERS.c.last_name)
    .join(_PROFILES, _PROFILES.c.user_id == _USERS.c.id)
    .where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        any_of(_PROFILES.c.id, "ids"),
    )
)
_SITE_NAMES = Sql(
    select(_SITES.c.name)
    .join(_LINKED_SITES, _LINKED_SITES.c.site_id == _SITES.c.id)
    .where(
        _LINKED_SITES.c.intervention_id == bindparam("id"),
        _LINKED_SITES.c.organization_id == bindparam("organization_id"),
        _SITES.c.organization_id == bindparam("organization_id"),
    )
    .order_by(_SITES.c.name)
)


async def profile_addresses(
    db: Executor, organization_id: int, profile_ids: Sequence[int]
) -> list[Any]:
    """(``id``, ``email``, ``first_name``, ``last_name``) of the profiles' users."""
    if not profile_ids:
        return []
    return await db.all(_PROFILE_ADDRESSES, organization_id=organization_id, ids=profile_ids)


async def site_names(db: Executor, row: Any) -> list[str]:
    rows = await db.all(_SITE_NAMES, organization_id=row.organization_id, id=row.id)
    return [r.name for r in rows]


# --- the anomalies an intervention repairs, moved as the lifecycle says (``anomaly_move``) ----

_ANOMALIES = table_of(Anomaly)
_A = _ANOMALIES.c
_LINKED_ANOMALIES = LINK_TABLES["anomaly_ids"][0]
_TAKE_ANOMALIES = Sql(
    update(_ANOMALIES)
    .where(
        _A.organization_id == bindparam("organization_id"),
        any_of(_A.id, "ids"),
        _A.status == bindparam("source"),
    )
    .values(status=bindparam("target"), updated_at=bindparam("now"))
    .returning(_A.id)
)
_LINKED = (
    select(_LINKED_ANOMALIES.c.anomaly_id)
    .where(
        _LINKED_ANOMALIES.c.intervention_id == bindparam("intervention_id"),
        _LINKED_ANOMALIES.c.organization_id == bindparam("organization_id"),
    )
    .scalar_subquery()
)
_MOVE_LINKED = Sql(
    update(_ANOMALIES)
    .where(
        _A.organization_id == bindparam("organization_id"),
        _A.id.in_(_LINKED),
        _A.status == bindparam("source"),
    )
    .values(status=bindparam("target"), updated_at=bindparam("now"))
    .returning(_A.id)
)
_RESOLVE_LINKED = Sql(
    update(_ANOMALIES)
    .where(
        _A.organization_id == bindparam("organization_id"),
        _A.id.in_(_LINKED),
        _A.status == bindparam("source"),
    )
    .values(
        status=bindparam("target"),
        updated_at=bindparam("now"),
        resolved_at=bindparam("now"),
        resolved_by_user_id=bindparam("user_id"),
    )
    .returning(_A.id)
)


async def take_anomalies(
    db: Executor, organization_id: int, anomaly_ids: Sequence[int], *, source: int, target: int
) -> list[int]:
    """Move the anomalies still in ``source`` to ``target``; the ids of those that moved (a
    concurrent curative may have taken one since it was read)."""
    rows = await db.all(
        _TAKE_ANOMALIES,
        organization_id=organization_id,
        ids=list(anomaly_ids),
        source=source,
        target=target,
        now=utcnow(),
    )
    return [r.id for r in rows]


async def move_linked_anomalies(
    db: Executor,
    row: Any,
    *,
    source: int,
    target: int,
    now: dt.datetime,
    resolved_by_user_id: int | None = None,
    resolved: bool | None = None,
) -> list[int]:
    """Move the intervention's anomalies in ``source`` to ``target``; ``resolved`` (by
    default: when ``resolved_by_user_id`` is given) also records when they were resolved,
    and by whom (``None``: by the service itself). The ids of those that moved."""
    params = {
        "organization_id": row.organization_id,
        "intervention_id": row.id,
        "source": source,
        "target": target,
        "now": now,
    }
    if resolved is None:
        resolved = resolved_by_user_id is not None
    if not resolved:
        rows = await db.all(_MOVE_LINKED, **params)
    else:
        rows = await db.all(_RESOLVE_LINKED, user_id=resolved_by_user_id, **params)
    return [r.id for r in rows]


# --- planning routines' occurrences (the worker, for every organisation) ----------------------

_ROUTINES = table_of(Routine)
_R = _ROUTINES.c
_ROUTINE_SITE_RULES = table_of(RoutineSiteRule)
_SITE_RULES = table_of(SiteRule)
_PLANNABLE = and_(_R.auto_create_enabled.is_(True), _R.archived_at.is_(None))

_ROUTINES_TO_PLAN = Sql(
    select(_R.organization_id, _R.id).where(_PLANNABLE, _R.rrule.is_not(None)).order_by(_R.id),
    unscoped="the planner's round goes over every organisation's routines",
)
_ROUTINE_TO_PLAN = Sql(
    select(_ROUTINES).where(
        _R.organization_id == bindparam("organization_id"), _R.id == bindparam("id"), _PLANNABLE
    )
)
_SITE_RULES_OF_ROUTINE = Sql(
    select(_SITE_RULES.c.id, _SITE_RULES.c.site_id, _SITE_RULES.c.rule_id)
    .join(_ROUTINE_SITE_RULES, _ROUTINE_SITE_RULES.c.site_rule_id == _SITE_RULES.c.id)
    .where(
        _ROUTINE_SITE_RULES.c.routine_id == bindparam("id"),
        _ROUTINE_SITE_RULES.c.organization_id == bindparam("organization_id"),
        _SITE_RULES.c.organization_id == bindparam("organization_id"),
    )
    .order_by(_SITE_RULES.c.id)
)
_PLANNED = Sql(
    select(_I.occurrence_start).where(
        ours(), _I.routine_id == bindparam("routine_id"), _I.occurrence_start >= bindparam("since")
    )
)
# PostgreSQL's construct; SQLite's compiler renders the same ON CONFLICT clause.
_INSERT_OCCURRENCE = Sql(
    postgresql.insert(INTERVENTIONS)
    .values({key: bindparam(key) for key in COLUMNS})
    .on_conflict_do_nothing(index_elements=["routine_id", "occurrence_start"])
    .returning(_I.id, _I.organization_id)
)


async def routines_to_plan(db: Executor) -> list[tuple[int, int]]:
    """(organisation, routine) of every routine that plans by itself."""
    return [(r.organization_id, r.id) for r in await db.all(_ROUTINES_TO_PLAN)]


async def routine_to_plan(
    db: Executor, organization_id: int, routine_id: int
) -> tuple[Any | None, list[Any]]:
    """The routine if it still plans by itself, and its site rules."""
    params = {"organization_id": organization_id, "id": routine_id}
    routine = await db.first(_ROUTINE_TO_PLAN, **params)
    if routine is None:
        return None, []
    return routine, await db.all(_SITE_RULES_OF_ROUTINE, **params)


async def planned_occurrences(
    db: Executor, organization_id: int, routine_id: int, since: dt.datetime
) -> set[dt.datetime]:
    """The routine's occurrences from ``since`` that have an intervention (cancelled too)."""
    rows = await db.all(
        _PLANNED, organization_id=organization_id, routine_id=routine_id, since=since
    )
    return {r.occurrence_start for r in rows}


async def insert_occurrence(db: Executor, values: dict[str, Any]) -> Any | None:
    """The new intervention's (``id``, ``organization_id``), or ``None`` if the occurrence
    was planned meanwhile."""
    params = {key: values.get(key) for key in COLUMNS}
    params["version"] = 1
    return await db.first(_INSERT_OCCURRENCE, **params)


# --- overdue interventions (``overdue.py``: the worker, for every organisation) ---------------


def overdue_condition(now: Any) -> Any:
    """``lifecycle.is_overdue`` in SQL at ``now`` (a bound parameter): planned or in progress
    (1, 2, 3: ``OVERDUE_STATUSES``), and past its scheduled end."""
    assert max(OVERDUE_STATUSES) == Status.IN_PROGRESS == len(OVERDUE_STATUSES)
    return and_(_I.status <= Status.IN_PROGRESS, _I.scheduled_end < now)


def not_overdue_condition(now: Any) -> Any:
    """The negation of ``overdue_condition``, an intervention without an end included."""
    return or_(_I.status > Status.IN_PROGRESS, _I.scheduled_end.is_(None), _I.scheduled_end >= now)


_NOW = bindparam("now", type_=UTCDateTime())
_OVERDUE_CANDIDATES = Sql(
    select(_I.organization_id, _I.id)
    .where(overdue_condition(_NOW), _I.overdue_notified_at.is_(None))
    .order_by(_I.organization_id, _I.id)
    .limit(bindparam("limit")),
    unscoped="the overdue round goes over every organisation's interventions",
)
# Conditional on everything that made it a candidate: whoever marks it first (another worker,
# or a re-planning that moved it out of overdue meanwhile) leaves nothing to mark here.
_MARK_OVERDUE = Sql(
    update(INTERVENTIONS)
    .where(ours(), any_of(_I.id, "ids"), overdue_condition(_NOW), _I.overdue_notified_at.is_(None))
    .values(overdue_notified_at=_NOW)
    .returning(
        _I.organization_id,
        _I.id,
        _I.type,
        _I.status,
        _I.description,
        _I.scheduled_start,
        _I.scheduled_end,
        _I.assigned_profile_id,
    )
)
_EXECUTED_BEFORE = Sql(
    select(_I.id)
    .where(
        ours(),
        _I.status == Status.TO_VERIFY,
        _I.actual_end < bindparam("cutoff", type_=UTCDateTime()),
    )
    .order_by(_I.id)
    .limit(bindparam("limit"))
)
_WRITER_ADDRESSES = Sql(
    select(_USERS.c.email, _USERS.c.first_name, _USERS.c.last_name)
    .join(_PROFILES, _PROFILES.c.user_id == _USERS.c.id)
    .where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        or_(_PROFILES.c.role == "admin", _PROFILES.c.role == "manager"),
        _PROFILES.c.archived_at.is_(None),
        _USERS.c.disabled_at.is_(None),
    )
    .order_by(_PROFILES.c.id)
)


async def overdue_candidates(db: Executor, now: dt.datetime, limit: int) -> list[Any]:
    """(``organization_id``, ``id``) of interventions overdue at ``now`` and not marked yet."""
    return await db.all(_OVERDUE_CANDIDATES, now=now, limit=limit)


async def mark_overdue(
    db: Executor, organization_id: int, intervention_ids: Sequence[int], now: dt.datetime
) -> list[Any]:
    """Mark those still overdue and unmarked (one statement); the marked ones (their
    ``id``, ``type``, ``status``, ``description``, dates and ``assigned_profile_id``)."""
    return await db.all(
        _MARK_OVERDUE, organization_id=organization_id, ids=list(intervention_ids), now=now
    )


async def executed_before(
    db: Executor, organization_id: int, cutoff: dt.datetime, limit: int
) -> list[int]:
    """Ids of the organisation's executed interventions (to verify) that ended before
    ``cutoff``."""
    rows = await db.all(
        _EXECUTED_BEFORE, organization_id=organization_id, cutoff=cutoff, limit=limit
    )
    return [r.id for r in rows]


async def writer_addresses(db: Executor, organization_id: int) -> list[Any]:
    """(``email``, ``first_name``, ``last_name``) of the organisation's active admins and
    managers."""
    return await db.all(_WRITER_ADDRESSES, organization_id=organization_id)
