"""Who an intervention is assigned to: a profile of the organisation and/or a provider contact."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from interventions.auth.models import display_name
from interventions.db import Executor
from interventions.interventions import repository as repo
from interventions.references import repository as refs


@dataclass(frozen=True)
class Assignment:
    profile_id: int | None
    contact: Any | None  # a company contact record (``id``, ``company_id``, ``name``, ``email``)
    user_id: int | None  # the profile's user

    def columns(self) -> dict[str, int | None]:
        """The intervention columns it sets; the provider company follows the contact."""
        return {
            "assigned_profile_id": self.profile_id,
            "assigned_company_contact_id": self.contact.id if self.contact else None,
            "company_id": self.contact.company_id if self.contact else None,
        }


@dataclass(frozen=True)
class AssigneeChoice:
    """What a request says of the assignee: which members it gives, and their values."""

    fields: Set[str]
    user_id: int | None = None
    profile_id: int | None = None
    contact_id: int | None = None

    @property
    def contact_given(self) -> bool:
        return "assigned_company_contact_id" in self.fields


async def current_assignment(db: Executor, row: Any) -> Assignment:
    """The assignment an intervention (or a routine) has now."""
    contact = None
    if row.assigned_company_contact_id is not None:
        found = await refs.contacts(db, row.organization_id, [row.assigned_company_contact_id])
        contact = found.get(row.assigned_company_contact_id)
    user_id = getattr(row, "assigned_user_id", None)
    if user_id is None and row.assigned_profile_id is not None:
        users = await repo.profile_users(db, row.organization_id, [row.assigned_profile_id])
        user_id = users.get(row.assigned_profile_id)
    return Assignment(profile_id=row.assigned_profile_id, contact=contact, user_id=user_id)


async def resolve_assignment(
    db: Executor, organization_id: int, choice: AssigneeChoice, current: Assignment | None = None
) -> Assignment:
    """The assignee profile and contact after applying ``choice`` over ``current`` (the
    intervention's assignment, or nothing at creation); 422 for ids foreign to the
    organisation."""
    given, profile = await refs.assignee_profile(
        db,
        organization_id,
        set(choice.fields),
        user_id=choice.user_id,
        profile_id=choice.profile_id,
    )
    profile_id = profile.id if profile is not None else None
    user_id = profile.user_id if profile is not None else None
    if not given and current is not None:
        profile_id, user_id = current.profile_id, current.user_id
    contact: Any | None = None
    if choice.contact_given:
        kept = current.contact if current is not None else None
        if kept is not None and kept.id == choice.contact_id and kept.archived_at is None:
            contact = kept  # the current contact, named again: read already, still active
        elif choice.contact_id is not None:
            contact = await refs.require_contact(
                db, organization_id, choice.contact_id, field="assignedCompanyContactId"
            )
    elif current is not None:
        contact = current.contact
    return Assignment(profile_id=profile_id, contact=contact, user_id=user_id)


async def addresses(
    db: Executor, organization_id: int, *assignments: Assignment
) -> list[list[tuple[str, str]]]:
    """(address, display name) of each assignment's profile user and contact, in one query."""
    profile_ids = sorted({a.profile_id for a in assignments if a.profile_id is not None})
    users: dict[int, tuple[str, str]] = {}
    for row in await repo.profile_addresses(db, organization_id, profile_ids):
        users[row.id] = (row.email, display_name(row))
    out: list[list[tuple[str, str]]] = []
    for assignment in assignments:
        found: list[tuple[str, str]] = []
        if assignment.profile_id in users:
            found.append(users[assignment.profile_id])
        if assignment.contact is not None and assignment.contact.email:
            found.append((assignment.contact.email, assignment.contact.name))
        out.append(found)
    return out
