"""Tenant-scoped look-ups of reference data, set-based: one statement per kind of id.

What other domains ask of reference data (the ids an intervention or a routine names, its
assignee, the site rules of a routine) and what every list of the HTTP API is made of: a
``Listing`` (one page and the count of a statement built once), the list filters
(``equals``, ``contains``) and ``page_of``. A resource's own statements are in its package's
``repository``, the ones every resource shares in ``resource``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, or_, select

from interventions.auth.models import Profile
from interventions.db import Executor, Sql, any_of, table_of
from interventions.errors import BadRequest, Unprocessable
from interventions.interventions.models import Intervention
from interventions.references.models import (
    Anomaly,
    Company,
    CompanyContact,
    Routine,
    RoutineSiteRule,
    Rule,
    Site,
    SiteRule,
)

_PROFILE = table_of(Profile).c
_ROUTINE = table_of(Routine).c
_SITE_RULES = table_of(SiteRule)
_SITE_RULE = _SITE_RULES.c
_ROUTINE_SITE_RULE = table_of(RoutineSiteRule).c


def unprocessable_ids(field: str, label: str, missing: Iterable[int]) -> Unprocessable:
    ids = ", ".join(str(i) for i in missing)
    return Unprocessable(
        f"No {label} {ids} in this organisation.",
        errors=[{"field": field, "message": f"Unknown {label}: {ids}."}],
    )


@functools.cache
def _existing(model: Any, active: bool) -> Sql:
    """Built once per model (hot: every write checks its ids with it)."""
    table = table_of(model)
    stmt = select(table).where(
        table.c.organization_id == bindparam("organization_id"), any_of(table.c.id, "ids")
    )
    if active and "archived_at" in table.c:
        stmt = stmt.where(table.c.archived_at.is_(None))
    return Sql(stmt)


# Built now rather than at the first request, so that the tenant-scoping test sees them.
for _model in (Site, Rule, SiteRule, Company, CompanyContact, Anomaly, Routine):
    _existing(_model, True)
_existing(CompanyContact, False)
_existing(Intervention, False)  # the check that raised an anomaly


async def existing(
    db: Executor,
    model: Any,
    organization_id: int,
    ids: Sequence[int],
    *,
    active: bool = True,
) -> dict[int, Any]:
    """The rows (records of every column) of ``model`` among ``ids`` that belong to the
    organisation (not archived)."""
    if not ids:
        return {}
    rows = await db.all(
        _existing(model, active), organization_id=organization_id, ids=list(dict.fromkeys(ids))
    )
    return {row.id: row for row in rows}


async def contacts(
    db: Executor, organization_id: int, contact_ids: Sequence[int]
) -> dict[int, Any]:
    """The organisation's company contacts among the ids, archived or not (an intervention
    or a routine keeps naming its contact)."""
    return await existing(db, CompanyContact, organization_id, contact_ids, active=False)


async def require_all(
    db: Executor,
    model: Any,
    organization_id: int,
    ids: Sequence[int],
    *,
    field: str,
    label: str,
) -> dict[int, Any]:
    """Every id must be a row of the organisation, else 422 naming the missing ones."""
    found = await existing(db, model, organization_id, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise unprocessable_ids(field, label, missing)
    return found


_ACTIVE_PROFILE = (
    _PROFILE.organization_id == bindparam("organization_id"),
    _PROFILE.archived_at.is_(None),
)
_PROFILE_BY_ID = Sql(
    select(table_of(Profile)).where(_PROFILE.id == bindparam("id"), *_ACTIVE_PROFILE)
)
_PROFILE_OF_USER = Sql(
    select(table_of(Profile)).where(_PROFILE.user_id == bindparam("user_id"), *_ACTIVE_PROFILE)
)


async def require_profile(
    db: Executor, organization_id: int, profile_id: int, *, field: str
) -> Any:
    """The organisation's active profile (a record of its columns), else 422."""
    profile = await db.first(_PROFILE_BY_ID, id=profile_id, organization_id=organization_id)
    if profile is None:
        raise unprocessable_ids(field, "profile", [profile_id])
    return profile


async def require_profile_of_user(
    db: Executor, organization_id: int, user_id: int, *, field: str
) -> Any:
    """The user's profile in the organisation (SPEC §2: ``assignedUserId`` is a user id)."""
    profile = await db.first(_PROFILE_OF_USER, user_id=user_id, organization_id=organization_id)
    if profile is None:
        raise unprocessable_ids(field, "user", [user_id])
    return profile


async def assignee_profile(
    db: Executor,
    organization_id: int,
    fields_set: set[str],
    *,
    user_id: int | None,
    profile_id: int | None,
) -> tuple[bool, Any | None]:
    """Whether a body names an assignee, and which profile (a record; ``None`` unassigns).

    ``assignedUserId`` is a user (their profile in the organisation is meant),
    ``assignedProfileId`` a profile; unknown ones are 422, both given naming different
    profiles is 400.
    """
    by_user = "assigned_user_id" in fields_set
    by_profile = "assigned_profile_id" in fields_set
    if not by_user and not by_profile:
        return False, None
    from_user = (
        await require_profile_of_user(db, organization_id, user_id, field="assignedUserId")
        if by_user and user_id is not None
        else None
    )
    from_profile = (
        await require_profile(db, organization_id, profile_id, field="assignedProfileId")
        if by_profile and profile_id is not None
        else None
    )
    if by_user and by_profile:
        named = {p.id if p is not None else None for p in (from_user, from_profile)}
        if len(named) > 1:
            raise BadRequest(
                "assignedUserId and assignedProfileId name different profiles.",
                errors=[
                    {
                        "field": "assignedProfileId",
                        "message": "Not the profile of assignedUserId; give one of them.",
                    }
                ],
            )
    return True, from_profile if by_profile else from_user


async def require_contact(
    db: Executor, organization_id: int, contact_id: int, *, field: str
) -> Any:
    """The organisation's active company contact (a record of its columns), else 422."""
    found = await require_all(
        db, CompanyContact, organization_id, [contact_id], field=field, label="company contact"
    )
    return found[contact_id]


_SITE_RULES_BETWEEN = Sql(
    select(_SITE_RULES).where(
        _SITE_RULE.organization_id == bindparam("organization_id"),
        _SITE_RULE.archived_at.is_(None),
        any_of(_SITE_RULE.site_id, "site_ids"),
        any_of(_SITE_RULE.rule_id, "rule_ids"),
    )
)


async def site_rules_between(
    db: Executor,
    organization_id: int,
    site_ids: Sequence[int],
    rule_ids: Sequence[int],
) -> dict[tuple[int, int], Any]:
    """The organisation's site rules (records) of any of ``site_ids`` with any of
    ``rule_ids``."""
    rows = await db.all(
        _SITE_RULES_BETWEEN,
        organization_id=organization_id,
        site_ids=list(dict.fromkeys(site_ids)),
        rule_ids=list(dict.fromkeys(rule_ids)),
    )
    return {(r.site_id, r.rule_id): r for r in rows}


_ACTIVE_ROUTINE = Sql(
    select(table_of(Routine)).where(
        _ROUTINE.id == bindparam("id"),
        _ROUTINE.organization_id == bindparam("organization_id"),
        _ROUTINE.archived_at.is_(None),
    )
)
_SITE_RULES_OF_ROUTINE = Sql(
    select(_SITE_RULES)
    .join(
        table_of(RoutineSiteRule),
        _ROUTINE_SITE_RULE.site_rule_id == _SITE_RULE.id,
    )
    .where(
        _ROUTINE_SITE_RULE.routine_id == bindparam("id"),
        _ROUTINE_SITE_RULE.organization_id == bindparam("organization_id"),
        _SITE_RULE.organization_id == bindparam("organization_id"),
    )
    .order_by(_SITE_RULE.id)
)


async def routine_with_site_rules(
    db: Executor, organization_id: int, routine_id: int
) -> tuple[Any, list[Any]] | None:
    """The organisation's active routine and its site rules (records), or ``None``."""
    routine = await db.first(_ACTIVE_ROUTINE, id=routine_id, organization_id=organization_id)
    if routine is None:
        return None
    site_rules = await db.all(
        _SITE_RULES_OF_ROUTINE, id=routine_id, organization_id=organization_id
    )
    return routine, site_rules


# --- the lists of the HTTP API -----------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def _like_escaped(text: str) -> str:
    """``text`` matched literally by ``LIKE … ESCAPE '/'`` (as ``autoescape`` would make it)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@dataclass(frozen=True)
class Filter:
    """A list filter: the condition a query parameter puts on the rows, over a bind
    parameter (the statement's text is the same whatever the value), and how the query
    parameter's value becomes the bind parameter's."""

    where: Callable[[Any], ColumnElement[bool]]  # the condition, given the bind parameter
    value: Callable[[Any], Any] = _same

    def condition(self, name: str) -> ColumnElement[bool]:
        """The condition on the bind parameter ``name`` (to build a statement once)."""
        return self.where(bindparam(name))


def equals(column: Any) -> Filter:
    """The rows whose ``column`` is the value."""
    return Filter(lambda value: column == value)


def contains(*columns: Any) -> Filter:
    """The rows with the value, case-insensitively, in one of ``columns``."""

    def where(text: Any) -> ColumnElement[bool]:
        found = [column.icontains(text, escape="/") for column in columns]
        return found[0] if len(found) == 1 else or_(*found)

    return Filter(where, _like_escaped)


class Listing:
    """A list built once (at module level, or by a builder cached per shape of its filters)
    from an ordered statement with bind parameters: its page, the statement with ``LIMIT``
    and ``OFFSET`` (the parameters ``limit`` and ``offset``, which ``page_of`` gives), and the
    count of all its rows."""

    def __init__(self, statement: Select[Any], *, unscoped: str | None = None) -> None:
        self.rows = Sql(
            statement.limit(bindparam("limit", type_=Integer())).offset(
                bindparam("offset", type_=Integer())
            ),
            unscoped=unscoped,
        )
        self.count = Sql(
            select(func.count()).select_from(statement.order_by(None).subquery()),
            unscoped=unscoped,
        )


async def page_of(
    db: Executor, listing: Listing, *, page: int, page_size: int, **params: Any
) -> tuple[list[Any], int]:
    """One page of ``listing`` (records of its columns), run with ``params``, and how many
    rows it has in all: two statements."""
    total = await db.scalar(listing.count, **params)
    rows = await db.all(listing.rows, limit=page_size, offset=(page - 1) * page_size, **params)
    return rows, int(total)
