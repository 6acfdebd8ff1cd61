"""Invitations: nobody joins an organisation without accepting (issue 9, item 6).

An admin's invitation creates no profile and says nothing about the invited e-mail (whether
it has an account here or elsewhere); it e-mails a single-use token through the outbox. The
profile is created when the invited person accepts with the token, either logged in as the
account of that e-mail or with its password, or, without an account, by choosing one.
Logins count profiles only, so they count accepted memberships only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from anyio import to_thread
from sqlalchemy.exc import IntegrityError

from interventions.auth import rate_limit
from interventions.auth import repository as users
from interventions.auth.dependencies import Caller
from interventions.auth.passwords import PasswordGate, hash_password
from interventions.auth.service import login_limits
from interventions.config import Settings
from interventions.db import Database, Executor, utcnow
from interventions.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from interventions.notifications.invitations import enqueue_invitation_email
from interventions.organizations import repository as repo
from interventions.organizations.profiles import profile_read
from interventions.organizations.schemas import (
    InvitationAcceptWithPassword,
    InvitationCreate,
    InvitationRead,
    InvitationStatus,
    OrganizationRead,
    OrganizationUpdate,
    ProfileRead,
)
from interventions.register import journal
from interventions.register.journal import Entry, Subject, user_actor

# 32 random bytes: unguessable, so acceptance needs no rate limit of its own.
TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256 (the token itself is only in the e-mail)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def status_of(invitation: Any, now: dt.datetime) -> InvitationStatus:
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


def _read(invitation: Any, now: dt.datetime) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        organization_id=invitation.organization_id,
        email=invitation.email,
        role=invitation.role,
        status=status_of(invitation, now),
        invited_by_profile_id=invitation.invited_by_profile_id,
        profile_id=invitation.profile_id,
        expires_at=invitation.expires_at,
        accepted_at=invitation.accepted_at,
        revoked_at=invitation.revoked_at,
        created_at=invitation.created_at,
    )


def acceptance_link(settings: Settings, base_url: str, token: str) -> str:
    page = settings.invitation_url or f"{base_url.rstrip('/')}/invitations/accept"
    return f"{page}{'&' if '?' in page else '?'}token={token}"


async def invite(
    db: Executor,
    settings: Settings,
    caller: Caller,
    body: InvitationCreate,
    *,
    base_url: str,
) -> InvitationRead:
    """Invite ``body.email`` to the caller's organisation and e-mail them the link.

    Whether the e-mail has an account (here or elsewhere) changes nothing in the answer. A
    member of this organisation is a 409: the caller sees its members anyway. A new
    invitation replaces the e-mail's pending ones (their links stop working).
    """
    email = body.email.strip().lower()
    org = caller.organization_id
    member = await repo.active_member(db, org, email)
    if member is not None:
        raise Conflict(
            f"{email} is already a member of this organisation: profile {member}.",
            errors=[{"field": "email", "message": "Already a member."}],
        )
    # Invitations go to any address the admin names: bounded per organisation, charged in
    # this transaction (a 429 queues nothing).
    quota = rate_limit.Limit(
        f"invitation-email:organization:{org}",
        settings.invitation_emails_per_hour,
        3600,
        "invitation e-mails from this organisation",
    )
    await rate_limit.charge(db, [quota])
    now = utcnow()
    await repo.revoke_open(db, org, email, now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = await repo.insert_invitation(
        db,
        org,
        email=email,
        role=body.role,
        invited_by_profile_id=caller.profile_id,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.invitation_ttl_seconds),
    )
    organization_name, inviter = await repo.invitation_wording(db, org, caller.user_id)
    await enqueue_invitation_email(
        db,
        organization_id=org,
        organization_name=organization_name,
        inviter=inviter,
        recipient=email,
        role=body.role,
        link=acceptance_link(settings, base_url, token),
        token=token,
        expires_at=invitation.expires_at,
    )
    return _read(invitation, now)


async def list_invitations(
    db: Executor,
    caller: Caller,
    *,
    page: int,
    page_size: int,
    status: InvitationStatus | None = None,
) -> tuple[list[InvitationRead], int]:
    now = utcnow()
    rows, total = await repo.invitations_page(
        db, caller.organization_id, status=status, now=now, page=page, page_size=page_size
    )
    return [_read(invitation, now) for invitation in rows], total


async def get_invitation(db: Executor, caller: Caller, invitation_id: int) -> InvitationRead:
    invitation = await repo.invitation(db, caller.organization_id, invitation_id, lock=False)
    if invitation is None:
        raise NotFound(f"No invitation {invitation_id}.")
    return _read(invitation, utcnow())


async def revoke_invitation(db: Executor, caller: Caller, invitation_id: int) -> None:
    """A pending invitation's link stops working at once; any other state is a 409."""
    invitation = await repo.invitation(db, caller.organization_id, invitation_id, lock=True)
    if invitation is None:
        raise NotFound(f"No invitation {invitation_id}.")
    now = utcnow()
    status = status_of(invitation, now)
    if status != "pending":
        hint = " Archive the profile instead." if status == "accepted" else ""
        raise Conflict(f"The invitation is {status}: it cannot be revoked.{hint}")
    await repo.revoke(db, caller.organization_id, invitation.id, now)


# --- acceptance ---------------------------------------------------------------------------------


def _check_open(invitation: Any, now: dt.datetime) -> Any:
    """The invitation of a token, if it can still be accepted: unknown → 422, used, revoked
    or expired → 409 saying which (only the token's holder learns it)."""
    if invitation is None:
        raise Unprocessable(
            "No invitation has this token.",
            errors=[{"field": "token", "message": "Unknown invitation token."}],
        )
    status = status_of(invitation, now)
    if status != "pending":
        advice = {
            "accepted": "it has already been accepted",
            "revoked": "it has been revoked; ask the organisation for a new one",
            "expired": "it has expired; ask the organisation for a new one",
        }[status]
        raise Conflict(
            f"This invitation cannot be accepted: {advice}.",
            errors=[{"field": "token", "message": f"Invitation {status}."}],
        )
    return invitation


async def _join(db: Executor, invitation: Any, user: Any, now: dt.datetime) -> ProfileRead:
    """The membership the invitation offered, and the invitation used up: one transaction.
    A former member (archived profile) comes back on the same profile with the new role.
    ``user``: its ``id``, ``email`` and names."""
    org = invitation.organization_id
    profile = await repo.profile_of_user(db, org, user.id)
    if profile is not None and profile.archived_at is None:
        raise Conflict(
            f"{user.email} is already a member of this organisation: profile {profile.id}.",
            errors=[{"field": "token", "message": "Already a member."}],
        )
    if profile is not None:
        profile = await repo.restore_profile(db, org, profile.id, invitation.role)
    else:
        try:
            profile = await repo.insert_profile(db, org, user.id, invitation.role, now)
        except IntegrityError as exc:
            raise Conflict(f"{user.email} was made a member meanwhile.") from exc
    await repo.accept(db, org, invitation.id, profile.id, now)
    changes = {"userId": user.id, "role": invitation.role, "invitationId": invitation.id}
    entry = Entry("join", Subject.PROFILE, profile.id, changes, user_actor(user.id, profile.id))
    journal.record(db, org, entry)
    return profile_read(profile, user)


async def accept_as_caller(db: Executor, caller: Caller, token: str) -> ProfileRead:
    """Accept as the logged-in user, whose e-mail must be the invited one."""
    now = utcnow()
    invitation = _check_open(await repo.invitation_by_token(db, token_hash(token), lock=True), now)
    user = await users.user(db, caller.user_id)
    assert user is not None  # the caller's session names a live user
    if user.email != invitation.email:
        raise Forbidden(
            "This invitation was sent to another e-mail address than this account's: log in "
            "with that account, or accept with its password."
        )
    return await _join(db, invitation, user, now)


WRONG_PASSWORD = "The password is not the one of the invited e-mail's account."


async def accept_with_password(
    database: Database,
    settings: Settings,
    gate: PasswordGate,
    body: InvitationAcceptWithPassword,
    *,
    client: str,
) -> ProfileRead:
    """Accept without a session: with the password of the invited e-mail's account, or, when
    it has none, creating it with ``body.password``.

    Checking an account's password is a login attempt: it goes through the same gate and is
    charged to the same limits before the verification, refunded when right. As in login,
    the slow Argon2 work runs between short transactions (SQLite takes its write lock at the
    first statement); the last one checks the invitation again, locked, and joins.
    """
    digest = token_hash(body.token)
    charged: list[int] = []
    ok = False
    with gate.admit():
        async with database.transaction() as db:
            invitation = _check_open(
                await repo.invitation_by_token(db, digest, lock=False), utcnow()
            )
            limits = login_limits(settings, invitation.email, client)
            existing = await users.user_by_email(db, invitation.email)
            if existing is not None:
                charged = await rate_limit.charge(db, limits)
        if existing is not None:
            ok = await gate.verify(existing.password_hash, body.password)
    new_hash: str | None = None
    if existing is not None:
        if not ok or existing.disabled_at is not None:
            raise Unauthorized(WRONG_PASSWORD)  # the charge stays: a failure
        async with database.transaction() as db:
            # The right password: the attempt does not count, whatever happens next.
            await rate_limit.clear(db, limits[0].key)
            await rate_limit.refund(db, charged)
    else:
        new_hash = await to_thread.run_sync(hash_password, body.password)

    async with database.transaction() as db:
        now = utcnow()
        invitation = _check_open(await repo.invitation_by_token(db, digest, lock=True), now)
        if existing is not None:
            user = await users.user(db, existing.id)
            assert user is not None  # users are never deleted
        else:
            assert new_hash is not None
            try:
                user = await users.insert_user(
                    db,
                    email=invitation.email,
                    password_hash=new_hash,
                    first_name=body.first_name,
                    last_name=body.last_name,
                    created_at=now,
                )
            except IntegrityError as exc:
                raise Conflict(
                    "An account with this e-mail was created meanwhile: accept with its password.",
                    errors=[{"field": "password", "message": "Use the account's password."}],
                ) from exc
        return await _join(db, invitation, user, now)


# --- the organisation itself ----------------------------------------------------------------


async def current_organization(db: Executor, caller: Caller) -> OrganizationRead:
    row = await repo.organization(db, caller.organization_id)
    if row is None:  # the session's organisation exists (foreign keys): never
        raise NotFound("No such organisation.")
    return OrganizationRead.model_validate(row, from_attributes=True)


async def update_organization(
    db: Executor, caller: Caller, body: OrganizationUpdate
) -> OrganizationRead:
    """Change the organisation's settings (admins): ``autoAcceptAfterDays``."""
    current = await current_organization(db, caller)
    if "auto_accept_after_days" not in body.model_fields_set:
        return current
    days = body.auto_accept_after_days
    if days == current.auto_accept_after_days:
        return current
    await repo.set_auto_accept(db, caller.organization_id, days)
    journal.record(
        db,
        caller.organization_id,
        Entry(
            "update",
            Subject.ORGANIZATION,
            caller.organization_id,
            {"autoAcceptAfterDays": {"from": current.auto_accept_after_days, "to": days}},
            caller.actor,
        ),
    )
    return current.model_copy(update={"auto_accept_after_days": days})
