"""Membership statements: profiles and invitations. Every look-up by id starts from the
organisation's profiles or invitations; only the acceptance finds an invitation by its token
(the token is the credential)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, Select, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import Invitation, Profile, User
from interventions.references.models import Organization
from interventions.references.repository import contains

# --- profiles -----------------------------------------------------------------------------------


_NAMED = contains(User.email, User.first_name, User.last_name)


def readable_profiles(
    organization_id: int,
    *,
    include_archived: bool = False,
    role: str | None = None,
    q: str | None = None,
) -> Select[Profile, User]:
    """The organisation's profiles with their users (e-mail, names), one row each; of
    ``role``, with ``q`` in the e-mail or a name, when given."""
    stmt = (
        select(Profile, User)
        .join(User, User.id == Profile.user_id)
        .where(Profile.organization_id == organization_id)
    )
    if not include_archived:
        stmt = stmt.where(Profile.archived_at.is_(None))
    if role is not None:
        stmt = stmt.where(Profile.role == role)
    if q is not None:
        stmt = stmt.where(_NAMED(q))
    return stmt


async def profile_with_user(
    session: AsyncSession, organization_id: int, profile_id: int, *, include_archived: bool
) -> Row[Profile, User] | None:
    return (
        await session.execute(
            readable_profiles(organization_id, include_archived=include_archived).where(
                Profile.id == profile_id
            )
        )
    ).one_or_none()


async def lock_profiles(
    session: AsyncSession, organization_id: int, profile_ids: Iterable[int]
) -> dict[int, Profile]:
    """The organisation's active profiles among ``profile_ids``, row-locked in id order (so
    that two admins changing each other's profiles cannot deadlock)."""
    rows = await session.execute(
        select(Profile)
        .where(
            Profile.organization_id == organization_id,
            Profile.id.in_(set(profile_ids)),
            Profile.archived_at.is_(None),
        )
        .order_by(Profile.id)
        .with_for_update()
    )
    return {profile.id: profile for profile in rows.scalars()}


def user_by_email(email: str) -> Select[User]:
    """E-mails are stored lower-cased; ``email`` must be too."""
    return select(User).where(User.email == email)


async def profile_of_user(
    session: AsyncSession, organization_id: int, user_id: int
) -> Profile | None:
    """The user's profile in the organisation, archived or not: there is at most one."""
    return (
        await session.execute(
            select(Profile)
            .where(Profile.organization_id == organization_id, Profile.user_id == user_id)
            .with_for_update()
        )
    ).scalar_one_or_none()


# --- invitations --------------------------------------------------------------------------------


def organization_invitations(organization_id: int) -> Select[Invitation]:
    """The organisation's invitations, whatever their status."""
    return select(Invitation).where(Invitation.organization_id == organization_id)


def open_at(now: dt.datetime) -> Any:
    """Neither accepted nor revoked, and not yet expired: the invitation can be accepted."""
    return and_(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )


def with_status(status: str, now: dt.datetime) -> Any:
    """The condition of ``status`` (see ``service.status_of``) at ``now``."""
    if status == "pending":
        return open_at(now)
    if status == "accepted":
        return Invitation.accepted_at.is_not(None)
    if status == "revoked":
        return and_(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_not(None))
    return and_(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at <= now,
    )


async def invitation_for_update(
    session: AsyncSession, organization_id: int, invitation_id: int
) -> Invitation | None:
    return (
        await session.execute(
            organization_invitations(organization_id)
            .where(Invitation.id == invitation_id)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def invitation_by_token(
    session: AsyncSession, token_hash: str, *, lock: bool
) -> Invitation | None:
    """The invitation whose token hashes to ``token_hash``, row-locked when ``lock`` (two
    acceptances of one token are serialised: the second sees it accepted)."""
    stmt = select(Invitation).where(Invitation.token_hash == token_hash)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_member(session: AsyncSession, organization_id: int, email: str) -> int | None:
    """The profile id of ``email``'s active membership of the organisation, if any. Only
    this organisation's members are looked at: nothing is learnt about other ones."""
    return (
        await session.execute(
            select(Profile.id)
            .join(User, User.id == Profile.user_id)
            .where(
                Profile.organization_id == organization_id,
                Profile.archived_at.is_(None),
                User.email == email,
            )
        )
    ).scalar_one_or_none()


async def revoke_open(
    session: AsyncSession, organization_id: int, email: str, now: dt.datetime
) -> None:
    """Revoke the organisation's open invitations of ``email`` (a new one replaces them)."""
    await session.execute(
        update(Invitation)
        .where(
            Invitation.organization_id == organization_id,
            Invitation.email == email,
            open_at(now),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def invitation_wording(
    session: AsyncSession, organization_id: int, inviter_user_id: int
) -> tuple[str, str]:
    """The organisation's name and the inviter's, as the e-mail shows them."""
    row = (
        await session.execute(
            select(Organization.name, User.first_name, User.last_name, User.email)
            .select_from(Organization)
            .join(User, User.id == inviter_user_id)
            .where(Organization.id == organization_id)
        )
    ).one()
    inviter = " ".join(part for part in (row.first_name, row.last_name) if part) or row.email
    return row.name, inviter
