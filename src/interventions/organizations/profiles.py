"""Profiles: the organisation's members (a user and a role). Every role reads them; only
admins change a role or archive one, and an admin can do neither to themselves. Members join
by invitation (``service``)."""

from __future__ import annotations

from typing import Any

from interventions.auth.dependencies import Caller
from interventions.auth.roles import Role
from interventions.db import Executor, utcnow
from interventions.errors import Conflict, Forbidden, NotFound
from interventions.organizations import repository as repo
from interventions.organizations.schemas import ProfileRead, ProfileUpdate
from interventions.references.paging import Page
from interventions.register import journal
from interventions.register.journal import Entry, Subject


def profile_read(profile: Any, user: Any) -> ProfileRead:
    """A profile's record and its user's (``id``, ``email``, names) as they are read."""
    return ProfileRead(
        id=profile.id,
        organization_id=profile.organization_id,
        user_id=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        role=profile.role,
        archived_at=profile.archived_at,
        created_at=profile.created_at,
    )


async def list_profiles(
    db: Executor,
    caller: Caller,
    page: Page,
    *,
    include_archived: bool = False,
    role: str | None = None,
    q: str | None = None,
) -> tuple[list[ProfileRead], int]:
    rows, total = await repo.profiles_page(
        db,
        caller.organization_id,
        include_archived=include_archived,
        role=role,
        q=q,
        page=page.page,
        page_size=page.size,
    )
    return [ProfileRead.model_validate(row) for row in rows], total


async def get_profile(
    db: Executor,
    caller: Caller,
    profile_id: int,
    *,
    include_archived: bool = False,
) -> ProfileRead:
    row = await repo.profile(
        db, caller.organization_id, profile_id, include_archived=include_archived
    )
    if row is None:
        raise NotFound(f"No profile {profile_id}.")
    return ProfileRead.model_validate(row)


async def _lock_for_admin(db: Executor, caller: Caller, profile_id: int) -> Any:
    """The target profile as it is read, locked with the caller's own; the caller must still
    be an admin (the role was read before this transaction began)."""
    locked = await repo.lock_profiles(db, caller.organization_id, {caller.profile_id, profile_id})
    me = locked.get(caller.profile_id)
    if me is None or me.role != Role.ADMIN:
        raise Forbidden("Only an admin may change profiles.")
    target = locked.get(profile_id)
    if target is None:
        raise NotFound(f"No profile {profile_id}.")
    return target


async def update_profile(
    db: Executor, caller: Caller, profile_id: int, body: ProfileUpdate
) -> ProfileRead:
    """Change a member's role. An admin cannot demote themselves: the organisation would be
    left with one admin fewer by the only person who could undo it."""
    profile = await _lock_for_admin(db, caller, profile_id)
    read = ProfileRead.model_validate(profile)
    if body.role is not None and body.role != profile.role:
        if profile.id == caller.profile_id:
            raise Conflict(
                "An admin cannot demote themselves; ask another admin.",
                errors=[{"field": "role", "message": "Cannot demote yourself."}],
            )
        await repo.set_role(db, caller.organization_id, profile.id, body.role)
        changes = journal.payload({"role": (profile.role, body.role)})
        entry = Entry("update", Subject.PROFILE, profile.id, changes, caller.actor)
        journal.record(db, caller.organization_id, entry)
        read = read.model_copy(update={"role": body.role})
    return read


async def archive_profile(db: Executor, caller: Caller, profile_id: int) -> None:
    """The member loses access to the organisation at once (their sessions stop working)."""
    profile = await _lock_for_admin(db, caller, profile_id)
    if profile.id == caller.profile_id:
        raise Conflict("An admin cannot archive their own profile; ask another admin.")
    now = utcnow()
    await repo.archive_profile(db, caller.organization_id, profile.id, now)
    changes = journal.payload({"archivedAt": now})
    entry = Entry("archive", Subject.PROFILE, profile.id, changes, caller.actor)
    journal.record(db, caller.organization_id, entry)
