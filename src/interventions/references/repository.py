"""Tenant-scoped look-ups of reference data, set-based: one statement per kind of id.

What other domains ask of reference data (the ids an intervention or a routine names, its
assignee, the site rules of a routine) and the organisation-scoped statements every resource
package starts from (``readable``, ``get_row``, ``page_of``, ``archive_where``, the list
filters ``equals`` and ``contains``). A resource's own statements are in its package's
``repository``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from interventions.auth.models import Profile
from interventions.errors import BadRequest, NotFound, Unprocessable
from interventions.references.models import (
    CompanyContact,
    Routine,
    RoutineSiteRule,
    SiteRule,
)


def unprocessable_ids(field: str, label: str, missing: Iterable[int]) -> Unprocessable:
    ids = ", ".join(str(i) for i in missing)
    return Unprocessable(
        f"No {label} {ids} in this organisation.",
        errors=[{"field": field, "message": f"Unknown {label}: {ids}."}],
    )


@functools.cache
def _existing_statement(model: Any, active: bool) -> Select[Any]:
    """Built once per model (hot: every write checks its ids with it)."""
    stmt = select(model).where(
        model.organization_id == bindparam("organization_id"),
        model.id.in_(bindparam("ids", expanding=True)),
    )
    if active and hasattr(model, "archived_at"):
        stmt = stmt.where(model.archived_at.is_(None))
    return stmt


async def existing(
    session: AsyncSession,
    model: Any,
    organization_id: int,
    ids: Sequence[int],
    *,
    active: bool = True,
) -> dict[int, Any]:
    """The rows of ``model`` among ``ids`` that belong to the organisation (not archived)."""
    if not ids:
        return {}
    rows = await session.execute(
        _existing_statement(model, active),
        {"organization_id": organization_id, "ids": list(dict.fromkeys(ids))},
    )
    return {row.id: row for row in rows.scalars()}


async def require_all(
    session: AsyncSession,
    model: Any,
    organization_id: int,
    ids: Sequence[int],
    *,
    field: str,
    label: str,
) -> dict[int, Any]:
    """Every id must be a row of the organisation, else 422 naming the missing ones."""
    found = await existing(session, model, organization_id, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise unprocessable_ids(field, label, missing)
    return found


_PROFILE = select(Profile).where(
    Profile.id == bindparam("id"),
    Profile.organization_id == bindparam("organization_id"),
    Profile.archived_at.is_(None),
)


async def require_profile(
    session: AsyncSession, organization_id: int, profile_id: int, *, field: str
) -> Profile:
    params = {"id": profile_id, "organization_id": organization_id}
    profile = (await session.execute(_PROFILE, params)).scalar_one_or_none()
    if profile is None:
        raise unprocessable_ids(field, "profile", [profile_id])
    return profile


_PROFILE_OF_USER = select(Profile).where(
    Profile.user_id == bindparam("user_id"),
    Profile.organization_id == bindparam("organization_id"),
    Profile.archived_at.is_(None),
)


async def require_profile_of_user(
    session: AsyncSession, organization_id: int, user_id: int, *, field: str
) -> Profile:
    """The user's profile in the organisation (SPEC §2: ``assignedUserId`` is a user id)."""
    params = {"user_id": user_id, "organization_id": organization_id}
    profile = (await session.execute(_PROFILE_OF_USER, params)).scalar_one_or_none()
    if profile is None:
        raise unprocessable_ids(field, "user", [user_id])
    return profile


async def assignee_profile(
    session: AsyncSession,
    organization_id: int,
    fields_set: set[str],
    *,
    user_id: int | None,
    profile_id: int | None,
) -> tuple[bool, Profile | None]:
    """Whether a body names an assignee, and which profile (``None`` unassigns).

    ``assignedUserId`` is a user (their profile in the organisation is meant),
    ``assignedProfileId`` a profile; unknown ones are 422, both given naming different
    profiles is 400.
    """
    by_user = "assigned_user_id" in fields_set
    by_profile = "assigned_profile_id" in fields_set
    if not by_user and not by_profile:
        return False, None
    from_user = (
        await require_profile_of_user(session, organization_id, user_id, field="assignedUserId")
        if by_user and user_id is not None
        else None
    )
    from_profile = (
        await require_profile(session, organization_id, profile_id, field="assignedProfileId")
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
    session: AsyncSession, organization_id: int, contact_id: int, *, field: str
) -> CompanyContact:
    # A contact this transaction has already read (an intervention's current one) is not
    # read again; the same checks apply to it.
    loaded = session.identity_map.get(identity_key(CompanyContact, contact_id))
    if (
        isinstance(loaded, CompanyContact)
        and loaded.organization_id == organization_id
        and loaded.archived_at is None
    ):
        return loaded
    found = await require_all(
        session, CompanyContact, organization_id, [contact_id], field=field, label="company contact"
    )
    contact: CompanyContact = found[contact_id]
    return contact


_SITE_RULES_BETWEEN = select(SiteRule).where(
    SiteRule.organization_id == bindparam("organization_id"),
    SiteRule.archived_at.is_(None),
    SiteRule.site_id.in_(bindparam("site_ids", expanding=True)),
    SiteRule.rule_id.in_(bindparam("rule_ids", expanding=True)),
)


async def site_rules_between(
    session: AsyncSession, organization_id: int, site_ids: Sequence[int], rule_ids: Sequence[int]
) -> dict[tuple[int, int], SiteRule]:
    """The organisation's site rules of any of ``site_ids`` with any of ``rule_ids``."""
    params = {
        "organization_id": organization_id,
        "site_ids": list(dict.fromkeys(site_ids)),
        "rule_ids": list(dict.fromkeys(rule_ids)),
    }
    rows = (await session.execute(_SITE_RULES_BETWEEN, params)).scalars()
    return {(r.site_id, r.rule_id): r for r in rows}


async def routine_with_site_rules(
    session: AsyncSession, organization_id: int, routine_id: int
) -> tuple[Routine, list[SiteRule]] | None:
    routine = (
        await session.execute(
            select(Routine).where(
                Routine.id == routine_id,
                Routine.organization_id == organization_id,
                Routine.archived_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if routine is None:
        return None
    site_rules = list(
        (
            await session.execute(
                select(SiteRule)
                .join(RoutineSiteRule, RoutineSiteRule.site_rule_id == SiteRule.id)
                .where(RoutineSiteRule.routine_id == routine_id)
                .order_by(SiteRule.id)
            )
        ).scalars()
    )
    return routine, site_rules


# --- reading and archiving reference rows for the HTTP API ------------------------------------

# A list filter: the condition a query parameter's value puts on the rows.
Condition = Callable[[Any], ColumnElement[bool]]


def equals(column: Any) -> Condition:
    """The rows whose ``column`` is the value."""
    return lambda value: column == value


def contains(*columns: Any) -> Condition:
    """The rows with the value, case-insensitively, in one of ``columns``."""

    def condition(text: str) -> ColumnElement[bool]:
        found = [column.icontains(text, autoescape=True) for column in columns]
        return found[0] if len(found) == 1 else or_(*found)

    return condition


def readable(
    model: Any, organization_id: int, *, include_archived: bool = False
) -> Select[*tuple[Any, ...]]:
    """Every reference query for a caller starts here: its organisation, archived rows hidden."""
    stmt = select(model).where(model.organization_id == organization_id)
    if not include_archived and hasattr(model, "archived_at"):
        stmt = stmt.where(model.archived_at.is_(None))
    return stmt


async def get_row(
    session: AsyncSession,
    model: Any,
    organization_id: int,
    row_id: int,
    *,
    label: str,
    include_archived: bool = False,
    for_update: bool = False,
) -> Any:
    """One row of the organisation, else 404 (archived rows are missing unless asked for)."""
    stmt = readable(model, organization_id, include_archived=include_archived).where(
        model.id == row_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No {label} {row_id}.")
    return row


async def page_of_rows(
    session: AsyncSession, stmt: Select[*tuple[Any, ...]], *, page: int, page_size: int
) -> tuple[list[Row[*tuple[Any, ...]]], int]:
    """One page of ``stmt`` (already ordered) and how many rows it has in all: two statements."""
    total = (
        await session.execute(select(func.count()).select_from(stmt.order_by(None).subquery()))
    ).scalar_one()
    rows = (await session.execute(stmt.limit(page_size).offset((page - 1) * page_size))).all()
    return list(rows), int(total)


async def page_of(
    session: AsyncSession, stmt: Select[*tuple[Any, ...]], *, page: int, page_size: int
) -> tuple[list[Any], int]:
    """As ``page_of_rows`` for a statement of one entity: the entities themselves."""
    rows, total = await page_of_rows(session, stmt, page=page, page_size=page_size)
    return [row[0] for row in rows], total


async def archive_where(
    session: AsyncSession, model: Any, organization_id: int, *where: Any, now: dt.datetime
) -> None:
    """Archive, in one statement, the organisation's active rows of ``model`` matching ``where``."""
    await session.execute(
        update(model)
        .where(model.organization_id == organization_id, model.archived_at.is_(None), *where)
        .values(archived_at=now)
        .execution_options(synchronize_session=False)
    )
