"""``/auth/v1/rs``: login, refresh, logout, me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from interventions.auth import repository, service
from interventions.auth.dependencies import CurrentCaller
from interventions.auth.passwords import PasswordGate
from interventions.auth.schemas import (
    AccessTokenRead,
    LoginCredentials,
    MeRead,
    RefreshRequest,
    TokensRead,
)
from interventions.config import AppSettings
from interventions.db import AppDatabase
from interventions.errors import Unauthorized
from interventions.handlers import LeanRoute
from interventions.openapi import errors_for
from interventions.transactions import RequestDb
from interventions.wire import Envelope

router = APIRouter(route_class=LeanRoute, prefix="/auth/v1/rs", tags=["auth"])


async def password_gate(request: Request) -> PasswordGate:
    """The application's bound on password verifications, made on first use (one per
    process: each worker process serves its own application)."""
    state = request.app.state
    gate: PasswordGate | None = getattr(state, "password_gate", None)
    if gate is None:
        settings = state.settings
        gate = state.password_gate = PasswordGate(settings.login_concurrency, settings.login_queue)
    return gate


async def app_secret(request: Request) -> str:
    """The key tokens are signed with (``Settings.resolved_secret``, read at start-up)."""
    secret: str = request.app.state.secret
    return secret


Gate = Annotated[PasswordGate, Depends(password_gate)]
AppSecret = Annotated[str, Depends(app_secret)]


@router.post(
    "/login/credentials",
    operation_id="login",
    status_code=201,
    response_model=Envelope[TokensRead],
    responses=errors_for(400, 401, 403, 413, 415, 422, 429, auth=False),
    summary="Log in with e-mail and password",
)
async def login(
    body: LoginCredentials,
    request: Request,
    database: AppDatabase,
    settings: AppSettings,
    secret: AppSecret,
    gate: Gate,
) -> Envelope[TokensRead]:
    issued = await service.login(
        database,
        settings,
        secret,
        gate,
        email=body.email,
        password=body.password,
        organization_id=body.organization_id,
        client=request.client.host if request.client else "unknown",
    )
    return Envelope(
        data=TokensRead(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            session_token=issued.session_token,
        )
    )


@router.post(
    "/refresh",
    operation_id="refreshAccessToken",
    status_code=200,
    response_model=Envelope[AccessTokenRead],
    responses=errors_for(400, 401, 413, 415, auth=False),
    summary="Renew the access token while the session lives",
)
async def refresh(
    body: RefreshRequest, database: AppDatabase, settings: AppSettings, secret: AppSecret
) -> Envelope[AccessTokenRead]:
    token = await service.refresh(database, settings, secret, body.refresh_token)
    return Envelope(data=AccessTokenRead(access_token=token))


@router.post(
    "/logout",
    operation_id="logout",
    status_code=204,
    responses=errors_for(401),
    summary="Revoke the session: both tokens stop working at once",
)
async def logout(caller: CurrentCaller, db: RequestDb) -> Response:
    await service.logout(await db.executor(), caller)
    return Response(status_code=204)


@router.get(
    "/me",
    operation_id="getMe",
    response_model=Envelope[MeRead],
    responses=errors_for(401),
    summary="The caller: user, profile, organisation and role",
)
async def me(caller: CurrentCaller, db: RequestDb) -> Envelope[MeRead]:
    user = await repository.user(await db.executor(), caller.user_id)
    if user is None:  # deleted since the caller's session was read
        raise Unauthorized("The account no longer exists.")
    return Envelope(
        data=MeRead(
            user_id=user.id,
            profile_id=caller.profile_id,
            organization_id=caller.organization_id,
            role=caller.role,
            email=user.email,
            first_name=user.first_name,
            last_name=user.last_name,
        )
    )
