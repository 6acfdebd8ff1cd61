"""Who is calling: both tokens checked together against the live server-side session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Boolean, Text, and_, bindparam, func, select

from interventions.auth import tokens
from interventions.auth.models import AuthSession, Profile, User
from interventions.auth.roles import WRITERS
from interventions.db import Executor, Sql, utcnow
from interventions.errors import Forbidden, Unauthorized
from interventions.idempotency.claims import CLAIM_SCOPE, KEY_SCOPE, KeyInFlight, claim_sqlite
from interventions.register.journal import user_actor
from interventions.transactions import request_database


@dataclass(frozen=True)
class Caller:
    """The authenticated profile: everything it sees is inside ``organization_id``."""

    user_id: int
    profile_id: int
    organization_id: int
    role: str
    session_id: str

    @property
    def can_write(self) -> bool:
        return self.role in WRITERS

    @property
    def actor(self) -> dict[str, Any]:
        """Who the journal names for what this caller does."""
        return user_actor(self.user_id, self.profile_id)


def _bearer(value: str | None) -> str:
    if not value:
        raise Unauthorized("The Authorization header is missing.")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <accessToken>'.")
    return token.strip()


# Built and compiled once (every request runs it), executed by the driver.
_SESSION_ROW = (
    select(
        AuthSession.user_id,
        AuthSession.profile_id,
        AuthSession.organization_id,
        AuthSession.revoked_at,
        AuthSession.expires_at,
        Profile.role,
        Profile.archived_at,
        User.disabled_at,
    )
    .join(
        Profile,
        and_(
            Profile.id == AuthSession.profile_id,
            Profile.organization_id == AuthSession.organization_id,
        ),
    )
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.id == bindparam("session_id"))
)
_UNSCOPED = "the authentication's session look-up: it is what finds the organisation"
_SESSION = Sql(_SESSION_ROW, unscoped=_UNSCOPED)
# PostgreSQL, a request under an Idempotency-Key: the same look-up claims the caller's key
# for the transaction (``idempotency.claims``) — ``claimed`` is false while another
# transaction holds it, the same key's first request still in flight.
_SESSION_CLAIMING = Sql(
    _SESSION_ROW.add_columns(
        func.pg_try_advisory_xact_lock(
            func.hashtextextended(
                func.concat(
                    AuthSession.organization_id,
                    ":",
                    AuthSession.user_id,
                    ":",
                    bindparam("key", type_=Text),
                ),
                0,
            ),
            type_=Boolean,
        ).label("claimed")
    ),
    unscoped=_UNSCOPED,
)


def identify(secret: str, authorization: str | None, session_token: str | None) -> tuple[int, str]:
    """The (user, session) both tokens name together, before any statement."""
    access = tokens.decode(_bearer(authorization), secret, "access")
    if not session_token:
        raise Unauthorized("The x-session-token header is missing.")
    user_id, session_id = tokens.access_identity(access)
    s_user_id, s_session_id = tokens.session_identity(
        tokens.decode(session_token.strip(), secret, "session")
    )
    if (user_id, session_id) != (s_user_id, s_session_id):
        raise Unauthorized("The access token and the session token do not belong together.")
    return user_id, session_id


async def resolve_caller(
    db: Executor, secret: str, authorization: str | None, session_token: str | None
) -> Caller:
    user_id, session_id = identify(secret, authorization, session_token)
    return await look_up(db, user_id, session_id)


async def look_up(db: Executor, user_id: int, session_id: str, *, key: str | None = None) -> Caller:
    """The live session's caller; on PostgreSQL with ``key``, that key claimed too."""
    claiming = key is not None and db.postgresql
    if claiming:
        row = await db.first(_SESSION_CLAIMING, session_id=session_id, key=key)
    else:
        row = await db.first(_SESSION, session_id=session_id)
    if row is None:
        raise Unauthorized("The session does not exist.")
    if row.user_id != user_id:
        raise Unauthorized("The session does not belong to this user.")
    if row.revoked_at is not None:
        raise Unauthorized("The session has been revoked.")
    if row.expires_at <= utcnow():
        raise Unauthorized("The session has expired.")
    if row.archived_at is not None or row.disabled_at is not None:
        raise Unauthorized("The account no longer has access to this organisation.")
    if claiming and not row.claimed:
        raise KeyInFlight()
    return Caller(
        user_id=user_id,
        profile_id=row.profile_id,
        organization_id=row.organization_id,
        role=row.role,
        session_id=session_id,
    )


# The two headers as the OpenAPI document declares them (app.py adds them to every operation
# that depends on ``current_caller``). They are not FastAPI dependencies: solving two more
# dependencies per request cost more than the whole token check, and the raw headers are
# read below anyway so that each failure gets its own precise message.
SECURITY_SCHEMES = {
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Bearer <accessToken>` from login.",
    },
    "APIKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-session-token",
        "description": "`sessionToken` from login.",
    },
}


# Where ``current_caller`` leaves the caller in the request's scope, for what runs around the
# endpoint and must know whose request it is (idempotency keys are per caller).
CALLER_KEY = "interventions.caller"


async def current_caller(request: Request) -> Caller:
    """The caller, looked up in the request's own transaction (one per request). The
    request's database is taken from the request, not as a sub-dependency: FastAPI solves a
    dependency tree on every request, and a flat one costs less."""
    ctx = await request_database(request)
    scope = request.scope
    try:
        user_id, session_id = identify(
            request.app.state.secret,
            request.headers.get("authorization"),
            request.headers.get("x-session-token"),
        )
    except tokens.InvalidToken as exc:
        raise Unauthorized(str(exc)) from exc
    key: str | None = scope.get(KEY_SCOPE)
    database = request.app.state.db
    if key is not None and database.sqlite and CLAIM_SCOPE not in scope:
        # Before the transaction: on SQLite it would queue behind the first request's.
        scope[CLAIM_SCOPE] = claim_sqlite(database.engine.url.database, user_id, key)
    caller = await look_up(await ctx.executor(), user_id, session_id, key=key)
    scope[CALLER_KEY] = caller
    return caller


async def current_writer(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """Admins and managers create, update and verify; viewers only read."""
    if not caller.can_write:
        raise Forbidden(f"The role '{caller.role}' may only read.")
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
CurrentWriter = Annotated[Caller, Depends(current_writer)]
