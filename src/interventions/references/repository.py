"""Tenant-scoped look-ups of reference data, set-based: one statement per kind of id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import Profile
from interventions.errors import Unprocessable
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
    stmt = select(model).where(model.organization_id == organization_id, model.id.in_(ids))
    if active and hasattr(model, "archived_at"):
        stmt = stmt.where(model.archived_at.is_(None))
    return {row.id: row for row in (await session.execute(stmt)).scalars()}


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


async def require_profile(
    session: AsyncSession, organization_id: int, profile_id: int, *, field: str
) -> Profile:
    profile = (
        await session.execute(
            select(Profile).where(
                Profile.id == profile_id,
                Profile.organization_id == organization_id,
                Profile.archived_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if profile is None:
        raise unprocessable_ids(field, "profile", [profile_id])
    return profile


async def require_contact(
    session: AsyncSession, organization_id: int, contact_id: int, *, field: str
) -> CompanyContact:
    found = await require_all(
        session, CompanyContact, organization_id, [contact_id], field=field, label="company contact"
    )
    contact: CompanyContact = found[contact_id]
    return contact


async def site_rules_between(
    session: AsyncSession, organization_id: int, site_ids: Sequence[int], rule_ids: Sequence[int]
) -> dict[tuple[int, int], SiteRule]:
    """The organisation's site rules of any of ``site_ids`` with any of ``rule_ids``."""
    rows = (
        await session.execute(
            select(SiteRule).where(
                SiteRule.organization_id == organization_id,
                SiteRule.archived_at.is_(None),
                SiteRule.site_id.in_(site_ids),
                SiteRule.rule_id.in_(rule_ids),
            )
        )
    ).scalars()
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
