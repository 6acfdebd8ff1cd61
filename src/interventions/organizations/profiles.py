"""Profiles: the organisation's members (a user and a role). Every role reads them; only
admins change a role or archive one, and an admin can do neither to themselves. Members join
by invitation (``service``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.auth.models import Profile, User
from interventions.db import utcnow
from interventions.errors import Conflict, Forbidden, NotFound
from interventions.organizations import repository as repo
from interventions.organizations.schemas import ProfileRead, ProfileUpdate
from interventions.references import repository as refs
from interventions.references.paging import Page


def profile_read(profile: Profile, user: User) -> ProfileRead:
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
    session: AsyncSession,
    caller: Caller,
    page: Page,
    *,
    include_archived: bool = False,
    role: str | None = None,
    q: str | None = None,
) -> tuple[list[ProfileRead], int]:
    stmt = repo.readable_profiles(
        caller.organization_id, include_archived=include_archived, role=role, q=q
    )
    rows, total = await refs.page_of_rows(
        session, stmt.order_by(Profile.id), page=page.page, page_size=page.size
    )
    return [profile_read(profile, user) for profile, user in rows], total


async def get_profile(
    session: AsyncSession, caller: Caller, profile_id: int, *, include_archived: bool = False
) -> ProfileRead:
    row = await repo.profile_with_user(
        session, caller.organization_id, profile_id, include_archived=include_archived
    )
    if row is None:
        raise NotFound(f"No profile {profile_id}.")
    profile, user = row
    return profile_read(profile, user)


async def _lock_for_admin(session: AsyncSession, caller: Caller, profile_id: int) -> Profile:
    """The target profile, locked with the caller's own; the caller must still be an admin
    (the role was read before this transaction began)."""
    locked = await repo.lock_profiles(
        session, caller.organization_id, {caller.profile_id, profile_id}
    )
    me = locked.get(caller.profile_id)
    if me is None or me.role != "admin":
        raise Forbidden("Only an admin may change profiles.")
    target = locked.get(profile_id)
    if target is None:
        raise NotFound(f"No profile {profile_id}.")
    return target


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    assert user is not None  # a profile's user: the foreign key guarantees it
    return user


async def update_profile(
    session: AsyncSession, caller: Caller, profile_id: int, body: ProfileUpdate
) -> ProfileRead:
    """Change a member's role. An admin cannot demote themselves: the organisation would be
    left with one admin fewer by the only person who could undo it."""
    profile = await _lock_for_admin(session, caller, profile_id)
    if body.role is not None and body.role != profile.role:
        if profile.id == caller.profile_id:
            raise Conflict(
                "An admin cannot demote themselves; ask another admin.",
                errors=[{"field": "role", "message": "Cannot demote yourself."}],
            )
        profile.role = body.role
    await session.flush()
    return profile_read(profile, await _user(session, profile.user_id))


async def archive_profile(session: AsyncSession, caller: Caller, profile_id: int) -> None:
    """The member loses access to the organisation at once (their sessions stop working)."""
    profile = await _lock_for_admin(session, caller, profile_id)
    if profile.id == caller.profile_id:
        raise Conflict("An admin cannot archive their own profile; ask another admin.")
    profile.archived_at = utcnow()
    await session.flush()
