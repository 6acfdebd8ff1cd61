"""Membership statements run by the executor (``db.Sql``): profiles and invitations. Every
look-up by id starts from the organisation's profiles or invitations; only the acceptance
finds an invitation by its token (the token is the credential)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, insert, select, update

from interventions.auth.models import Invitation, Profile, User, display_name
from interventions.db import Executor, Sql, any_of, table_of
from interventions.references import repository as refs
from interventions.references.models import Organization

_PROFILES = table_of(Profile)
_USERS = table_of(User)
_INVITATIONS = table_of(Invitation)
_ORGANIZATIONS = table_of(Organization)


# --- profiles -----------------------------------------------------------------------------------

# A profile as it is read: its columns and its user's e-mail and names (``ProfileRead``).
_PROFILE_READ = (
    *_PROFILES.c,
    _USERS.c.email,
    _USERS.c.first_name,
    _USERS.c.last_name,
)


def _readable_profiles(*, include_archived: bool) -> Select[Any]:
    """The organisation's profiles with their users, one row each."""
    stmt = (
        select(*_PROFILE_READ)
        .join(_USERS, _USERS.c.id == _PROFILES.c.user_id)
        .where(_PROFILES.c.organization_id == bindparam("organization_id"))
    )
    if not include_archived:
        stmt = stmt.where(_PROFILES.c.archived_at.is_(None))
    return stmt


_NAMED = refs.contains(_USERS.c.email, _USERS.c.first_name, _USERS.c.last_name)


@functools.cache
def _profiles(include_archived: bool, role: bool, q: bool) -> refs.Listing:
    """The organisation's profiles by id, per shape of the filters: of ``role``, with ``q``
    in the e-mail or a name, when given."""
    stmt = _readable_profiles(include_archived=include_archived)
    if role:
        stmt = stmt.where(_PROFILES.c.role == bindparam("role"))
    if q:
        stmt = stmt.where(_NAMED.condition("q"))
    return refs.Listing(stmt.order_by(_PROFILES.c.id))


async def profiles_page(
    db: Executor,
    organization_id: int,
    *,
    include_archived: bool,
    role: str | None,
    q: str | None,
    page: int,
    page_size: int,
) -> tuple[list[Any], int]:
    """One page of the organisation's profiles (read records, by id) and how many in all."""
    listing = _profiles(include_archived, role is not None, q is not None)
    params: dict[str, Any] = {"organization_id": organization_id}
    if role is not None:
        params["role"] = role
    if q is not None:
        params["q"] = _NAMED.value(q)
    return await refs.page_of(db, listing, page=page, page_size=page_size, **params)


_PROFILE = {
    archived: Sql(
        _readable_profiles(include_archived=archived).where(_PROFILES.c.id == bindparam("id"))
    )
    for archived in (False, True)
}


async def profile(
    db: Executor, organization_id: int, profile_id: int, *, include_archived: bool
) -> Any:
    """The organisation's profile as it is read (with its user), or ``None``."""
    return await db.first(
        _PROFILE[include_archived], organization_id=organization_id, id=profile_id
    )


# Only the profiles' rows are locked: the users' are not changed here.
_LOCK_PROFILES = Sql(
    select(*_PROFILE_READ)
    .join(_USERS, _USERS.c.id == _PROFILES.c.user_id)
    .where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        any_of(_PROFILES.c.id, "ids"),
        _PROFILES.c.archived_at.is_(None),
    )
    .order_by(_PROFILES.c.id)
    .with_for_update(of=_PROFILES)
)


async def lock_profiles(
    db: Executor, organization_id: int, profile_ids: Iterable[int]
) -> dict[int, Any]:
    """The organisation's active profiles among ``profile_ids`` as they are read,
    row-locked in id order (so that two admins changing each other's profiles cannot
    deadlock)."""
    rows = await db.all(
        _LOCK_PROFILES, organization_id=organization_id, ids=sorted(set(profile_ids))
    )
    return {row.id: row for row in rows}


_SET_ROLE = Sql(
    update(_PROFILES)
    .where(
        _PROFILES.c.id == bindparam("b_id"),
        _PROFILES.c.organization_id == bindparam("b_organization_id"),
    )
    .values(role=bindparam("b_role"))
)
_ARCHIVE_PROFILE = Sql(
    update(_PROFILES)
    .where(
        _PROFILES.c.id == bindparam("b_id"),
        _PROFILES.c.organization_id == bindparam("b_organization_id"),
    )
    .values(archived_at=bindparam("b_now"))
)


async def set_role(db: Executor, organization_id: int, profile_id: int, role: str) -> None:
    await db.execute(_SET_ROLE, b_id=profile_id, b_organization_id=organization_id, b_role=role)


async def archive_profile(
    db: Executor, organization_id: int, profile_id: int, now: dt.datetime
) -> None:
    await db.execute(
        _ARCHIVE_PROFILE, b_id=profile_id, b_organization_id=organization_id, b_now=now
    )


_PROFILE_OF_USER = Sql(
    select(_PROFILES)
    .where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        _PROFILES.c.user_id == bindparam("user_id"),
    )
    .with_for_update()
)


async def profile_of_user(db: Executor, organization_id: int, user_id: int) -> Any:
    """The user's profile in the organisation, archived or not (there is at most one),
    row-locked; or ``None``."""
    return await db.first(_PROFILE_OF_USER, organization_id=organization_id, user_id=user_id)


_INSERT_PROFILE = Sql(
    insert(_PROFILES)
    .values(
        user_id=bindparam("user_id"),
        organization_id=bindparam("organization_id"),
        role=bindparam("role"),
        created_at=bindparam("created_at"),
    )
    .returning(*_PROFILES.c)
)
_RESTORE_PROFILE = Sql(
    update(_PROFILES)
    .where(
        _PROFILES.c.id == bindparam("b_id"),
        _PROFILES.c.organization_id == bindparam("b_organization_id"),
    )
    .values(archived_at=None, role=bindparam("b_role"))
    .returning(*_PROFILES.c)
)


async def insert_profile(
    db: Executor, organization_id: int, user_id: int, role: str, now: dt.datetime
) -> Any:
    """The new profile (every column). The user already a member: ``IntegrityError``."""
    return await db.first(
        _INSERT_PROFILE,
        user_id=user_id,
        organization_id=organization_id,
        role=role,
        created_at=now,
    )


async def restore_profile(db: Executor, organization_id: int, profile_id: int, role: str) -> Any:
    """A former member's archived profile active again, with ``role`` (every column)."""
    return await db.first(
        _RESTORE_PROFILE, b_id=profile_id, b_organization_id=organization_id, b_role=role
    )


_ACTIVE_MEMBER = Sql(
    select(_PROFILES.c.id)
    .join(_USERS, _USERS.c.id == _PROFILES.c.user_id)
    .where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        _PROFILES.c.archived_at.is_(None),
        _USERS.c.email == bindparam("email"),
    )
)


async def active_member(db: Executor, organization_id: int, email: str) -> int | None:
    """The profile id of ``email``'s active membership of the organisation, if any. Only
    this organisation's members are looked at: nothing is learnt about other ones."""
    found: int | None = await db.scalar(
        _ACTIVE_MEMBER, organization_id=organization_id, email=email
    )
    return found


# --- invitations --------------------------------------------------------------------------------

_NOW = bindparam("now", type_=Invitation.expires_at.type)


def _open() -> ColumnElement[bool]:
    """Neither accepted nor revoked, and not yet expired at ``now``: it can be accepted."""
    return and_(
        _INVITATIONS.c.accepted_at.is_(None),
        _INVITATIONS.c.revoked_at.is_(None),
        _INVITATIONS.c.expires_at > _NOW,
    )


def _with_status(status: str) -> ColumnElement[bool]:
    """The condition of ``status`` (see ``service.status_of``) at ``now``."""
    if status == "pending":
        return _open()
    if status == "accepted":
        return _INVITATIONS.c.accepted_at.is_not(None)
    if status == "revoked":
        return and_(_INVITATIONS.c.accepted_at.is_(None), _INVITATIONS.c.revoked_at.is_not(None))
    return and_(
        _INVITATIONS.c.accepted_at.is_(None),
        _INVITATIONS.c.revoked_at.is_(None),
        _INVITATIONS.c.expires_at <= _NOW,
    )


def _organization_invitations() -> Select[Any]:
    """The organisation's invitations, whatever their status."""
    return select(_INVITATIONS).where(
        _INVITATIONS.c.organization_id == bindparam("organization_id")
    )


@functools.cache
def _invitations(status: str | None) -> refs.Listing:
    """The organisation's invitations by id, of ``status`` when given."""
    stmt = _organization_invitations()
    if status is not None:
        stmt = stmt.where(_with_status(status))
    return refs.Listing(stmt.order_by(_INVITATIONS.c.id))


async def invitations_page(
    db: Executor,
    organization_id: int,
    *,
    status: str | None,
    now: dt.datetime,
    page: int,
    page_size: int,
) -> tuple[list[Any], int]:
    """One page of the organisation's invitations (records, by id) and how many in all."""
    # ``now`` is bound only by the statements of a status that depends on the time.
    return await refs.page_of(
        db,
        _invitations(status),
        page=page,
        page_size=page_size,
        organization_id=organization_id,
        now=now,
    )


_ONE_INVITATION = _organization_invitations().where(_INVITATIONS.c.id == bindparam("id"))
_INVITATION = {
    False: Sql(_ONE_INVITATION),
    True: Sql(_ONE_INVITATION.with_for_update()),
}


async def invitation(db: Executor, organization_id: int, invitation_id: int, *, lock: bool) -> Any:
    """The organisation's invitation (row-locked when ``lock``), or ``None``."""
    return await db.first(_INVITATION[lock], organization_id=organization_id, id=invitation_id)


_BY_TOKEN = select(_INVITATIONS).where(_INVITATIONS.c.token_hash == bindparam("token_hash"))
_INVITATION_BY_TOKEN = {
    lock: Sql(
        _BY_TOKEN.with_for_update() if lock else _BY_TOKEN,
        unscoped="an acceptance: the token (its hash) is what finds the organisation",
    )
    for lock in (False, True)
}


async def invitation_by_token(db: Executor, token_hash: str, *, lock: bool) -> Any:
    """The invitation whose token hashes to ``token_hash``, row-locked when ``lock`` (two
    acceptances of one token are serialised: the second sees it accepted); or ``None``."""
    return await db.first(_INVITATION_BY_TOKEN[lock], token_hash=token_hash)


_INSERT_INVITATION = Sql(
    insert(_INVITATIONS)
    .values(
        organization_id=bindparam("organization_id"),
        email=bindparam("email"),
        role=bindparam("role"),
        invited_by_profile_id=bindparam("invited_by_profile_id"),
        token_hash=bindparam("token_hash"),
        created_at=bindparam("created_at"),
        expires_at=bindparam("expires_at"),
    )
    .returning(*_INVITATIONS.c)
)


async def insert_invitation(
    db: Executor,
    organization_id: int,
    *,
    email: str,
    role: str,
    invited_by_profile_id: int,
    token_hash: str,
    created_at: dt.datetime,
    expires_at: dt.datetime,
) -> Any:
    """The new invitation, every column."""
    return await db.first(
        _INSERT_INVITATION,
        organization_id=organization_id,
        email=email,
        role=role,
        invited_by_profile_id=invited_by_profile_id,
        token_hash=token_hash,
        created_at=created_at,
        expires_at=expires_at,
    )


_B_NOW = bindparam("b_now", type_=Invitation.revoked_at.type)
_REVOKE_OPEN = Sql(
    update(_INVITATIONS)
    .where(
        _INVITATIONS.c.organization_id == bindparam("b_organization_id"),
        _INVITATIONS.c.email == bindparam("b_email"),
        _INVITATIONS.c.accepted_at.is_(None),
        _INVITATIONS.c.revoked_at.is_(None),
        _INVITATIONS.c.expires_at > _B_NOW,
    )
    .values(revoked_at=_B_NOW)
)
_REVOKE = Sql(
    update(_INVITATIONS)
    .where(
        _INVITATIONS.c.id == bindparam("b_id"),
        _INVITATIONS.c.organization_id == bindparam("b_organization_id"),
    )
    .values(revoked_at=_B_NOW)
)
_ACCEPT = Sql(
    update(_INVITATIONS)
    .where(
        _INVITATIONS.c.id == bindparam("b_id"),
        _INVITATIONS.c.organization_id == bindparam("b_organization_id"),
    )
    .values(accepted_at=bindparam("b_now"), profile_id=bindparam("b_profile_id"))
)


async def revoke_open(db: Executor, organization_id: int, email: str, now: dt.datetime) -> None:
    """Revoke the organisation's open invitations of ``email`` (a new one replaces them)."""
    await db.execute(_REVOKE_OPEN, b_organization_id=organization_id, b_email=email, b_now=now)


async def revoke(db: Executor, organization_id: int, invitation_id: int, now: dt.datetime) -> None:
    await db.execute(_REVOKE, b_id=invitation_id, b_organization_id=organization_id, b_now=now)


async def accept(
    db: Executor, organization_id: int, invitation_id: int, profile_id: int, now: dt.datetime
) -> None:
    """The invitation used up: it made (or restored) ``profile_id``."""
    await db.execute(
        _ACCEPT,
        b_id=invitation_id,
        b_organization_id=organization_id,
        b_now=now,
        b_profile_id=profile_id,
    )


_WORDING = Sql(
    select(_ORGANIZATIONS.c.name, _USERS.c.first_name, _USERS.c.last_name, _USERS.c.email)
    .select_from(_ORGANIZATIONS)
    .join(_USERS, _USERS.c.id == bindparam("inviter_user_id"))
    .where(_ORGANIZATIONS.c.id == bindparam("organization_id"))
)


async def invitation_wording(
    db: Executor, organization_id: int, inviter_user_id: int
) -> tuple[str, str]:
    """The organisation's name and the inviter's, as the e-mail shows them."""
    row = await db.first(_WORDING, organization_id=organization_id, inviter_user_id=inviter_user_id)
    assert row is not None  # the caller's organisation and user
    return row.name, display_name(row)


# --- the organisation itself (``/organizations/v1/rs/current``) -----------------------------

_ORGANIZATION = Sql(
    select(
        _ORGANIZATIONS.c.id,
        _ORGANIZATIONS.c.name,
        _ORGANIZATIONS.c.auto_accept_after_days,
        _ORGANIZATIONS.c.created_at,
    ).where(_ORGANIZATIONS.c.id == bindparam("organization_id"))
)
_SET_AUTO_ACCEPT = Sql(
    update(_ORGANIZATIONS)
    .where(_ORGANIZATIONS.c.id == bindparam("organization_id"))
    .values(auto_accept_after_days=bindparam("days"))
)
# The overdue round's (``interventions/overdue.py``): every organisation that accepts by itself.
_AUTO_ACCEPTING = Sql(
    select(_ORGANIZATIONS.c.id, _ORGANIZATIONS.c.auto_accept_after_days)
    .where(_ORGANIZATIONS.c.auto_accept_after_days.is_not(None))
    .order_by(_ORGANIZATIONS.c.id)
)


async def organization(db: Executor, organization_id: int) -> Any:
    """The organisation (``id``, ``name``, ``auto_accept_after_days``, ``created_at``)."""
    return await db.first(_ORGANIZATION, organization_id=organization_id)


async def set_auto_accept(db: Executor, organization_id: int, days: int | None) -> None:
    await db.execute(_SET_AUTO_ACCEPT, organization_id=organization_id, days=days)


async def auto_accepting(db: Executor) -> list[Any]:
    """(``id``, ``auto_accept_after_days``) of every organisation with the setting."""
    return await db.all(_AUTO_ACCEPTING)
