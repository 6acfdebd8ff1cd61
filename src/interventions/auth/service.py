"""Login, refresh and logout."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from interventions.auth import rate_limit, repository, tokens
from interventions.auth.dependencies import Caller
from interventions.auth.passwords import PasswordGate
from interventions.config import Settings
from interventions.db import Database, Executor, utcnow
from interventions.errors import AppError, Forbidden, Unauthorized, Unprocessable

WRONG_CREDENTIALS = "The e-mail or the password is wrong."


def login_limits(
    settings: Settings, email: str, client: str
) -> tuple[rate_limit.Limit, rate_limit.Limit]:
    """What a password attempt is charged to: per (e-mail, client) and per client whatever
    the e-mail. Every place that checks a password (login, accepting an invitation with one)
    charges these, so they share one count."""
    return (
        rate_limit.Limit(
            f"login:{email}:{client}",
            settings.login_max_failures,
            settings.login_window_seconds,
            "failed logins",
        ),
        rate_limit.Limit(
            f"login-client:{client}",
            settings.login_client_max_failures,
            settings.login_client_window_seconds,
            "failed logins from this address",
        ),
    )


async def login(
    database: Database,
    settings: Settings,
    secret: str,
    gate: PasswordGate,
    *,
    email: str,
    password: str,
    organization_id: int | None,
    client: str,
) -> tokens.IssuedTokens:
    """Check the credentials and open a session.

    Rate limited per (e-mail, client) and per client whatever the e-mail. The attempt is
    charged to both before the password is verified and refunded on success, so that a
    burst of concurrent attempts is verified at most as many times as the limits allow.
    The slow verification runs between two short transactions: SQLite's write lock is not
    held during it.
    """
    email = email.strip().lower()
    account, per_client = login_limits(settings, email, client)
    with gate.admit():  # before the charge: a login turned away here costs nothing
        async with database.transaction() as db:
            charged = await rate_limit.charge(db, [account, per_client])
            user = await repository.user_by_email(db, email)
        ok = await gate.verify(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled_at is not None:
        raise Unauthorized(WRONG_CREDENTIALS)  # the charge stays: a failure

    refused: AppError | None = None
    async with database.transaction() as db:
        # The right password: the attempt does not count, even if no session is opened.
        await rate_limit.clear(db, account.key)
        await rate_limit.refund(db, charged)
        try:
            profile = _choose_profile(await repository.memberships(db, user.id), organization_id)
        except AppError as exc:
            refused = exc  # leaving the block normally commits the refund
        else:
            now = utcnow()
            expires = now + dt.timedelta(seconds=settings.session_ttl_seconds)
            session_id = secrets.token_urlsafe(24)
            await repository.open_session(
                db,
                session_id=session_id,
                user_id=user.id,
                profile_id=profile.id,
                organization_id=profile.organization_id,
                created_at=now,
                expires_at=expires,
            )
    if refused is not None:
        raise refused
    return tokens.issue_all(
        secret,
        user_id=user.id,
        session_id=session_id,
        now=now,
        access_ttl=settings.access_token_ttl_seconds,
        session_expires=expires,
    )


def _choose_profile(profiles: Sequence[Any], organization_id: int | None) -> Any:
    """The membership the login opens, among the user's active ones (by organisation)."""
    if not profiles:
        raise Forbidden("This account is not a member of any organisation.")
    if organization_id is None:
        if len(profiles) > 1:
            raise Unprocessable(
                "This account belongs to several organisations: give organizationId.",
                errors=[{"field": "organizationId", "message": "Required for this account."}],
            )
        return profiles[0]
    for profile in profiles:
        if profile.organization_id == organization_id:
            return profile
    raise Unprocessable(
        "This account is not a member of that organisation.",
        errors=[{"field": "organizationId", "message": "Not an organisation of this account."}],
    )


async def refresh(database: Database, settings: Settings, secret: str, refresh_token: str) -> str:
    """A new access token, while the session lives."""
    try:
        claims = tokens.decode(refresh_token, secret, "refresh")
        user_id, session_id = tokens.access_identity(claims)
    except tokens.InvalidToken as exc:
        raise Unauthorized(str(exc)) from exc
    async with database.transaction(write=False) as db:
        auth_session = await repository.session_to_refresh(db, session_id)
    now = utcnow()
    if (
        auth_session is None
        or auth_session.user_id != user_id
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= now
    ):
        raise Unauthorized("The session is no longer valid; log in again.")
    ttl = min(
        settings.access_token_ttl_seconds,
        max(1, int((auth_session.expires_at - now).total_seconds())),
    )
    return tokens.issue_access(secret, user_id=user_id, session_id=session_id, now=now, ttl=ttl)


async def logout(db: Executor, caller: Caller) -> None:
    """Revoke the caller's session: both its tokens stop working at once."""
    await repository.revoke_session(db, caller.organization_id, caller.session_id, utcnow())
