"""Who is calling: both tokens checked together against the live server-side session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import and_, bindparam, select

from interventions.auth import tokens
from interventions.auth.models import AuthSession, Profile, User
from interventions.auth.roles import WRITERS
from interventions.db import Executor, Sql, utcnow
from interventions.errors import Forbidden, Unauthorized
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
_SESSION = Sql(
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
    .where(AuthSession.id == bindparam("session_id")),
    unscoped="the authentication's session look-up: it is what finds the organisation",
)


async def resolve_caller(
    db: Executor, secret: str, authorization: str | None, session_token: str | None
) -> Caller:
    access = tokens.decode(_bearer(authorization), secret, "access")
    if not session_token:
        raise Unauthorized("The x-session-token header is missing.")
    user_id, session_id = tokens.access_identity(access)
    s_user_id, s_session_id = tokens.session_identity(
        tokens.decode(session_token.strip(), secret, "session")
    )
    if (user_id, session_id) != (s_user_id, s_session_id):
        raise Unauthorized("The access token and the session token do not belong together.")
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
    db = await request_database(request)
    try:
        caller = await resolve_caller(
            await db.executor(),
            request.app.state.secret,
            request.headers.get("authorization"),
            request.headers.get("x-session-token"),
        )
    except tokens.InvalidToken as exc:
        raise Unauthorized(str(exc)) from exc
    request.scope[CALLER_KEY] = caller
    return caller


async def current_writer(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """Admins and managers create, update and verify; viewers only read."""
    if not caller.can_write:
        raise Forbidden(f"The role '{caller.role}' may only read.")
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
CurrentWriter = Annotated[Caller, Depends(current_writer)]
