"""Who an intervention is assigned to: a profile of the organisation and/or a provider contact."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.auth.models import Profile, User
from interventions.db import execute_core
from interventions.interventions.models import Intervention
from interventions.interventions.schemas import AssigneeFields
from interventions.references import repository as refs
from interventions.references.models import CompanyContact


@dataclass
class Assignment:
    profile_id: int | None
    contact: CompanyContact | None
    user_id: int | None = None  # the profile's user, when it was loaded anyway

    def known_users(self) -> dict[int, int]:
        """Profile → user, as far as known without a query."""
        if self.profile_id is None or self.user_id is None:
            return {}
        return {self.profile_id: self.user_id}

    def columns(self) -> dict[str, int | None]:
        """The intervention columns it sets; the provider company follows the contact."""
        return {
            "assigned_profile_id": self.profile_id,
            "assigned_company_contact_id": self.contact.id if self.contact else None,
            "company_id": self.contact.company_id if self.contact else None,
        }


async def resolve_assignment(
    session: AsyncSession,
    caller: Caller,
    body: AssigneeFields,
    current: Intervention | None = None,
) -> Assignment:
    """The assignee profile and contact after applying ``body`` (422 for foreign ids)."""
    given, profile = await refs.assignee_profile(
        session,
        caller.organization_id,
        body.model_fields_set,
        user_id=body.assigned_user_id,
        profile_id=body.assigned_profile_id,
    )
    profile_id = profile.id if profile is not None else None
    user_id = profile.user_id if profile is not None else None
    if not given:
        profile_id = current.assigned_profile_id if current else None
    contact: CompanyContact | None = None
    if body.contact_given():
        if body.assigned_company_contact_id is not None:
            contact = await refs.require_contact(
                session,
                caller.organization_id,
                body.assigned_company_contact_id,
                field="assignedCompanyContactId",
            )
    elif current is not None and current.assigned_company_contact_id is not None:
        contact = await session.get(CompanyContact, current.assigned_company_contact_id)
    return Assignment(profile_id=profile_id, contact=contact, user_id=user_id)


_PROFILE_ADDRESSES = (
    select(Profile.id, User.email, User.first_name, User.last_name)
    .join(Profile, Profile.user_id == User.id)
    .where(Profile.id.in_(bindparam("ids", expanding=True)))
)


async def addresses(session: AsyncSession, *assignments: Assignment) -> list[list[tuple[str, str]]]:
    """(address, display name) of each assignment's profile user and contact, in one query."""
    profile_ids = sorted({a.profile_id for a in assignments if a.profile_id is not None})
    users: dict[int, tuple[str, str]] = {}
    if profile_ids:
        for row in await execute_core(session, _PROFILE_ADDRESSES, {"ids": profile_ids}):
            name = " ".join(p for p in (row.first_name, row.last_name) if p) or row.email
            users[row.id] = (row.email, name)
    out: list[list[tuple[str, str]]] = []
    for assignment in assignments:
        found: list[tuple[str, str]] = []
        if assignment.profile_id in users:
            found.append(users[assignment.profile_id])
        if assignment.contact is not None and assignment.contact.email:
            found.append((assignment.contact.email, assignment.contact.name))
        out.append(found)
    return out
