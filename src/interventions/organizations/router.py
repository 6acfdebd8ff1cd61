"""``/invitations/v1/rs``: the organisation's invitations (admins), and their acceptance by
the invited person. Invitations are created by ``POST /profiles/v1/rs``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from interventions.auth.dependencies import CurrentCaller
from interventions.auth.router import password_gate
from interventions.db import RequestSession
from interventions.openapi import errors_for
from interventions.organizations import service
from interventions.organizations.schemas import (
    STATUS_DESCRIPTION,
    InvitationAccept,
    InvitationAcceptWithPassword,
    InvitationRead,
    InvitationStatus,
)
from interventions.references.router import CurrentAdmin, Paging, listed
from interventions.references.schemas import ProfileRead
from interventions.wire import MAX_SAFE_INTEGER, Envelope, ListEnvelope

router = APIRouter(prefix="/invitations/v1/rs", tags=["invitations"])

InvitationId = Annotated[
    int,
    Path(
        alias="invitationId",
        description="Unique identifier of the invitation.",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
    ),
]


@router.get(
    "",
    operation_id="listInvitations",
    response_model=ListEnvelope[InvitationRead],
    responses=errors_for(400, 403),
    summary="List the organisation's invitations (admins only)",
)
async def list_invitations(
    caller: CurrentAdmin,
    session: RequestSession,
    paging: Paging,
    status: Annotated[
        InvitationStatus | None, Query(description=f"Only this status: {STATUS_DESCRIPTION}.")
    ] = None,
) -> ListEnvelope[InvitationRead]:
    found = await service.list_invitations(
        session, caller, page=paging.page, page_size=paging.page_size, status=status
    )
    return listed(paging, found)


@router.get(
    "/{invitationId}",
    operation_id="getInvitation",
    response_model=Envelope[InvitationRead],
    responses=errors_for(400, 403, 404),
    summary="Read one invitation (admins only)",
)
async def get_invitation(
    invitation_id: InvitationId, caller: CurrentAdmin, session: RequestSession
) -> Envelope[InvitationRead]:
    return Envelope(data=await service.get_invitation(session, caller, invitation_id))


@router.delete(
    "/{invitationId}",
    operation_id="revokeInvitation",
    status_code=204,
    responses=errors_for(400, 403, 404, 409),
    summary="Revoke a pending invitation (admins only): its link stops working at once",
)
async def revoke_invitation(
    invitation_id: InvitationId, caller: CurrentAdmin, session: RequestSession
) -> Response:
    await service.revoke_invitation(session, caller, invitation_id)
    return Response(status_code=204)


@router.post(
    "/accept",
    operation_id="acceptInvitation",
    status_code=201,
    response_model=Envelope[ProfileRead],
    responses=errors_for(400, 403, 409, 413, 415, 422),
    summary="Accept an invitation as the logged-in user: creates the membership",
    description=(
        "The session's account must have the invited e-mail (else 403). An unknown token is "
        "a 422; a token already used, revoked or expired a 409. Answers the new profile; log "
        "in to it with its `organizationId`."
    ),
)
async def accept(
    body: InvitationAccept, caller: CurrentCaller, session: RequestSession
) -> Envelope[ProfileRead]:
    return Envelope(data=await service.accept_as_caller(session, caller, body.token))


@router.post(
    "/accept/credentials",
    operation_id="acceptInvitationWithPassword",
    status_code=201,
    response_model=Envelope[ProfileRead],
    responses=errors_for(400, 401, 409, 413, 415, 422, 429, auth=False),
    summary="Accept an invitation with a password: creates the membership (and the account)",
    description=(
        "No session needed. When the invited e-mail has an account, `password` must be its "
        "password (else 401; failures count towards the login rate limit, 429) and the names "
        "are ignored; otherwise the account is created with `password` and the names. An "
        "unknown token is a 422; a token already used, revoked or expired a 409."
    ),
)
async def accept_with_password(
    body: InvitationAcceptWithPassword, request: Request
) -> Envelope[ProfileRead]:
    profile = await service.accept_with_password(
        request.app.state.db,
        request.app.state.settings,
        password_gate(request),
        body,
        client=request.client.host if request.client else "unknown",
    )
    return Envelope(data=profile)


routers = [router]
