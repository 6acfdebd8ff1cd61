"""Statements of the auth domain run by the executor (``db.Sql``): users, the profiles a login
chooses from, and server-side sessions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from interventions.auth.models import AuthSession, Profile, User
from interventions.db import Executor, Sql, table_of

_USERS = table_of(User)
_PROFILES = table_of(Profile)
_SESSIONS = table_of(AuthSession)

# --- users ----------------------------------------------------------------------------------

_USER = Sql(
    select(_USERS.c.id, _USERS.c.email, _USERS.c.first_name, _USERS.c.last_name).where(
        _USERS.c.id == bindparam("id")
    )
)
# E-mails are stored lower-cased: the login and the acceptance of an invitation match on it.
_USER_BY_EMAIL = Sql(select(_USERS).where(_USERS.c.email == bindparam("email")))
_INSERT_USER = Sql(
    insert(_USERS)
    .values(
        email=bindparam("email"),
        password_hash=bindparam("password_hash"),
        first_name=bindparam("first_name"),
        last_name=bindparam("last_name"),
        created_at=bindparam("created_at"),
    )
    .returning(_USERS.c.id, _USERS.c.email, _USERS.c.first_name, _USERS.c.last_name)
)


async def user(db: Executor, user_id: int) -> Any:
    """The user's id, e-mail and names (a record), or ``None``."""
    return await db.first(_USER, id=user_id)


async def user_by_email(db: Executor, email: str) -> Any:
    """The user of ``email`` (already lower-cased), every column, or ``None``."""
    return await db.first(_USER_BY_EMAIL, email=email)


async def insert_user(
    db: Executor,
    *,
    email: str,
    password_hash: str,
    first_name: str | None,
    last_name: str | None,
    created_at: dt.datetime,
) -> Any:
    """The new user's id, e-mail and names. A taken e-mail is an ``IntegrityError``."""
    return await db.first(
        _INSERT_USER,
        email=email,
        password_hash=password_hash,
        first_name=first_name,
        last_name=last_name,
        created_at=created_at,
    )


# --- what a login opens ---------------------------------------------------------------------

_MEMBERSHIPS = Sql(
    select(_PROFILES.c.id, _PROFILES.c.organization_id)
    .where(_PROFILES.c.user_id == bindparam("user_id"), _PROFILES.c.archived_at.is_(None))
    .order_by(_PROFILES.c.organization_id),
    unscoped="a login chooses among the user's organisations: it is what finds the organisation",
)

_INSERT_SESSION = Sql(
    insert(_SESSIONS).values(
        id=bindparam("id"),
        user_id=bindparam("user_id"),
        profile_id=bindparam("profile_id"),
        organization_id=bindparam("organization_id"),
        created_at=bindparam("created_at"),
        expires_at=bindparam("expires_at"),
    )
)

_SESSION_TO_REFRESH = Sql(
    select(_SESSIONS.c.user_id, _SESSIONS.c.revoked_at, _SESSIONS.c.expires_at).where(
        _SESSIONS.c.id == bindparam("id")
    ),
    unscoped="a refresh: the session its signed token names is what finds the organisation",
)

_REVOKE_SESSION = Sql(
    update(_SESSIONS)
    .where(
        _SESSIONS.c.id == bindparam("b_id"),
        _SESSIONS.c.organization_id == bindparam("b_organization_id"),
        _SESSIONS.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("b_now"))
)


async def memberships(db: Executor, user_id: int) -> list[Any]:
    """The user's active profiles (``id``, ``organization_id``), by organisation."""
    return await db.all(_MEMBERSHIPS, user_id=user_id)


async def open_session(
    db: Executor,
    *,
    session_id: str,
    user_id: int,
    profile_id: int,
    organization_id: int,
    created_at: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    await db.execute(
        _INSERT_SESSION,
        id=session_id,
        user_id=user_id,
        profile_id=profile_id,
        organization_id=organization_id,
        created_at=created_at,
        expires_at=expires_at,
    )


async def session_to_refresh(db: Executor, session_id: str) -> Any:
    """The session's ``user_id``, ``revoked_at`` and ``expires_at``, or ``None``."""
    return await db.first(_SESSION_TO_REFRESH, id=session_id)


async def revoke_session(
    db: Executor, organization_id: int, session_id: str, now: dt.datetime
) -> None:
    """Revoke the session, unless it already is (its first revocation time stays)."""
    await db.execute(_REVOKE_SESSION, b_id=session_id, b_organization_id=organization_id, b_now=now)
