"""Tenant-scoped reads and writes of interventions and their links, set-based."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import Select, bindparam, delete, insert, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import Profile
from interventions.db import Executor, Sql, any_of, execute_core, executor_of, table_of, utcnow
from interventions.errors import NotFound
from interventions.interventions.lifecycle import Kind
from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
    InterventionHistory,
    InterventionRule,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.interventions.schemas import InterventionRead
from interventions.wire import format_datetime

LINK_TABLES: dict[str, Any] = {
    "site_ids": (InterventionSite, InterventionSite.site_id),
    "site_rule_ids": (InterventionSiteRule, InterventionSiteRule.site_rule_id),
    "rule_ids": (InterventionRule, InterventionRule.rule_id),
    "anomaly_ids": (InterventionAnomaly, InterventionAnomaly.anomaly_id),
}

KIND_LABELS = {
    Kind.PREVENTIVE: "preventive",
    Kind.CURATIVE: "curative",
    Kind.TRAINING: "training exercise",
}


def readable(organization_id: int) -> Select[Intervention]:
    """Every query for a caller starts here: its organisation. Cancelled interventions stay
    in the register (SPEC §4.3): they read with status 7; the lifecycle refuses every write."""
    return select(Intervention).where(Intervention.organization_id == organization_id)


# Hot statements are built once, with bound parameters: SQLAlchemy then finds their
# compiled form by identity instead of building them and deriving a cache key per request.
_BY_ID = select(Intervention).where(
    Intervention.organization_id == bindparam("organization_id"),
    Intervention.id == bindparam("id"),
)
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


async def get_for_update(
    session: AsyncSession, organization_id: int, intervention_id: int, kind: Kind | None = None
) -> Intervention:
    """The intervention, row-locked until the end of the transaction, else 404.

    An intervention of another kind than the path names is a 404 too.
    """
    params = {"organization_id": organization_id, "id": intervention_id}
    intervention = (await session.execute(_BY_ID_FOR_UPDATE, params)).scalar_one_or_none()
    if intervention is None or (kind is not None and intervention.type != kind):
        label = KIND_LABELS[kind] + " intervention" if kind is not None else "intervention"
        raise NotFound(f"No {label} {intervention_id}.")
    return intervention


async def get(session: AsyncSession, organization_id: int, intervention_id: int) -> Intervention:
    params = {"organization_id": organization_id, "id": intervention_id}
    intervention = (await session.execute(_BY_ID, params)).scalar_one_or_none()
    if intervention is None:
        raise NotFound(f"No intervention {intervention_id}.")
    return intervention


async def add_links(
    session: AsyncSession, intervention: Intervention, member: str, ids: Iterable[int]
) -> None:
    """Link ``ids`` (sites, site rules, rules or anomalies) in one INSERT."""
    model, column = LINK_TABLES[member]
    rows = [
        {
            "intervention_id": intervention.id,
            column.key: i,
            "organization_id": intervention.organization_id,
        }
        for i in dict.fromkeys(ids)
    ]
    if rows:  # Core, not the ORM's bulk path: nothing in the session needs to know
        await execute_core(session, insert(table_of(model)), rows)


async def replace_links(
    session: AsyncSession, intervention: Intervention, member: str, ids: Sequence[int]
) -> None:
    model, _ = LINK_TABLES[member]
    table = table_of(model)
    await execute_core(session, delete(table).where(table.c.intervention_id == intervention.id))
    await add_links(session, intervention, member, ids)


_LINKS = union_all(
    *(
        select(literal(member).label("member"), model.intervention_id, column.label("ref")).where(
            model.intervention_id.in_(bindparam("ids", expanding=True))
        )
        for member, (model, column) in LINK_TABLES.items()
    )
)
_PROFILES = table_of(Profile)
_PROFILE_USERS = Sql(
    select(_PROFILES.c.id, _PROFILES.c.user_id).where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        any_of(_PROFILES.c.id, "ids"),
    )
)


async def links(
    session: AsyncSession, intervention_ids: Sequence[int]
) -> dict[int, dict[str, list[int]]]:
    """All four link sets of the interventions, in one statement."""
    out: dict[int, dict[str, list[int]]] = defaultdict(no_links)
    if not intervention_ids:
        return out
    rows = (await execute_core(session, _LINKS, {"ids": list(intervention_ids)})).all()
    for member, intervention_id, ref in rows:
        out[intervention_id][member].append(ref)
    for value in out.values():
        for ids in value.values():
            ids.sort()
    return out


async def profile_users(
    db: Executor | AsyncSession, organization_id: int, profile_ids: Iterable[int | None]
) -> dict[int, int]:
    """The user of each of the organisation's profiles among ``profile_ids``."""
    wanted = sorted({p for p in profile_ids if p is not None})
    if not wanted:
        return {}
    db = await executor_of(db)
    rows = await db.all(_PROFILE_USERS, organization_id=organization_id, ids=wanted)
    return {pid: uid for pid, uid in rows}


def signature_path(file_id: str | None) -> str | None:
    return f"/storage/v1/rs/files/{file_id}" if file_id else None


def read_fields(
    intervention: Any,
    link_sets: dict[str, list[int]],
    assigned_user_id: int | None,
) -> dict[str, Any]:
    """The members of the wire form, from an ``Intervention`` or a row with its columns."""
    i = intervention
    return dict(
        id=i.id,
        status=i.status,
        type=i.type,
        description=i.description,
        img_signature=signature_path(i.signature_file_id),
        code_pin=i.code_pin,
        auto_created=i.auto_created,
        creation_status=i.creation_status,
        scheduled_start=i.scheduled_start,
        scheduled_end=i.scheduled_end,
        actual_start=i.actual_start,
        actual_end=i.actual_end,
        provider_name=i.provider_name,
        provider_email=i.provider_email,
        provider_action_comment=i.provider_action_comment,
        provider_general_comment=i.provider_general_comment,
        assigned_company_contact_id=i.assigned_company_contact_id,
        assigned_user_id=assigned_user_id,
        assigned_profile_id=i.assigned_profile_id,
        verified_by_user_id=i.verified_by_user_id,
        verified_by_id=i.verified_by_user_id,
        verified_at=i.verified_at,
        decision_comment=i.decision_comment,
        attendee_count=i.attendee_count,
        routine_id=i.routine_id,
        organization_id=i.organization_id,
        created_by_user_id=i.created_by_user_id,
        created_by_id=i.created_by_user_id,
        company_id=i.company_id,
        negotiation_end_date=i.negotiation_end_date,
        check_type=i.check_type,
        archived_at=i.archived_at,
        deleted_at=i.deleted_at,
        cancellation_reason=i.cancellation_reason,
        updated_at=i.updated_at,
        created_at=i.created_at,
        **link_sets,
    )


def to_read(
    intervention: Intervention, link_sets: dict[str, list[int]], assigned_user_id: int | None
) -> InterventionRead:
    return InterventionRead(**read_fields(intervention, link_sets, assigned_user_id))


async def read_many(
    session: AsyncSession,
    interventions: Sequence[Intervention],
    known_users: Mapping[int, int] | None = None,
) -> list[InterventionRead]:
    """Wire form of several interventions: two statements whatever their number.

    ``known_users`` maps profiles whose user the caller has already loaded.
    """
    ids = [i.id for i in interventions]
    link_sets = await links(session, ids)
    users = await _users(session, interventions, known_users)
    return [to_read(i, link_sets[i.id], _user_of(i, users)) for i in interventions]


async def read_one(
    session: AsyncSession,
    intervention: Intervention,
    link_sets: dict[str, list[int]] | None = None,
    known_users: Mapping[int, int] | None = None,
) -> InterventionRead:
    """Wire form of one intervention; ``link_sets`` when the caller knows all four already
    (it has just written or read them), so that nothing is read twice."""
    if link_sets is None:
        return (await read_many(session, [intervention], known_users))[0]
    users = await _users(session, [intervention], known_users)
    return to_read(intervention, link_sets, _user_of(intervention, users))


async def _users(
    session: AsyncSession,
    interventions: Sequence[Intervention],
    known_users: Mapping[int, int] | None,
) -> Mapping[int, int]:
    known = known_users or {}
    wanted = [i.assigned_profile_id for i in interventions if i.assigned_profile_id not in known]
    if not wanted:
        return known
    org = interventions[0].organization_id
    return {**known, **await profile_users(session, org, wanted)}


def _user_of(intervention: Intervention, users: Mapping[int, int]) -> int | None:
    profile_id = intervention.assigned_profile_id
    return users.get(profile_id) if profile_id is not None else None


def no_links() -> dict[str, list[int]]:
    return {member: [] for member in LINK_TABLES}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


_HISTORY = table_of(InterventionHistory)
_INSERT_HISTORY = Sql(
    insert(_HISTORY).values(
        organization_id=bindparam("organization_id"),
        intervention_id=bindparam("intervention_id"),
        user_id=bindparam("user_id"),
        action=bindparam("action"),
        changes=bindparam("changes"),
        created_at=bindparam("created_at"),
    )
)


async def record_history(
    session: AsyncSession,
    intervention: Intervention,
    *,
    user_id: int | None,
    action: str,
    changes: dict[str, tuple[Any, Any]] | dict[str, Any],
) -> None:
    """Append one history entry (written now, with Core: the intervention exists already).
    ``changes`` maps a member to ``(before, after)``; members are recorded by their wire
    names (SPEC §4.3), whichever spelling the caller used: the alias generator the schemas
    use, so that history and bodies name a member alike."""
    payload = {
        to_camel(key): (
            {"from": _jsonable(v[0]), "to": _jsonable(v[1])}
            if isinstance(v, tuple)
            else _jsonable(v)
        )
        for key, v in changes.items()
    }
    db = await Executor.of(session)  # on the session's connection: its transaction
    await db.execute(
        _INSERT_HISTORY,
        organization_id=intervention.organization_id,
        intervention_id=intervention.id,
        user_id=user_id,
        action=action,
        changes=payload,
        created_at=utcnow(),
    )
