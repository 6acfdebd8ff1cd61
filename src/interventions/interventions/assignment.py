"""Who an intervention is assigned to: a profile of the organisation and/or a provider contact."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.auth.models import Profile, User
from interventions.interventions.models import Intervention
from interventions.interventions.schemas import AssigneeFields
from interventions.references import repository as refs
from interventions.references.models import CompanyContact


@dataclass
class Assignment:
    profile_id: int | None
    contact: CompanyContact | None

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
    given, profile_id = body.assignee_profile()
    if not given:
        profile_id = current.assigned_profile_id if current else None
    elif profile_id is not None:
        field = (
            "assignedProfileId"
            if "assigned_profile_id" in body.model_fields_set
            else "assignedUserId"
        )
        await refs.require_profile(session, caller.organization_id, profile_id, field=field)
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
    return Assignment(profile_id=profile_id, contact=contact)


async def addresses(session: AsyncSession, assignment: Assignment) -> list[tuple[str, str]]:
    """(address, display name) of an assignment's profile user and contact."""
    out: list[tuple[str, str]] = []
    if assignment.profile_id is not None:
        row = (
            await session.execute(
                select(User.email, User.first_name, User.last_name)
                .join(Profile, Profile.user_id == User.id)
                .where(Profile.id == assignment.profile_id)
            )
        ).one_or_none()
        if row is not None:
            name = " ".join(p for p in (row.first_name, row.last_name) if p) or row.email
            out.append((row.email, name))
    if assignment.contact is not None and assignment.contact.email:
        out.append((assignment.contact.email, assignment.contact.name))
    return out
