"""``/profiles/v1/rs``: the organisation's members (every role reads them, admins change
them and invite new ones); ``/invitations/v1/rs``: the organisation's invitations (admins),
and their acceptance by the invited person."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from interventions.auth.dependencies import CurrentCaller
from interventions.auth.roles import Role
from interventions.auth.router import Gate
from interventions.config import AppSettings
from interventions.db import AppDatabase
from interventions.handlers import LeanRoute
from interventions.openapi import errors_for
from interventions.organizations import profiles, service
from interventions.organizations.dependencies import CurrentAdmin
from interventions.organizations.schemas import (
    STATUS_DESCRIPTION,
    InvitationAccept,
    InvitationAcceptWithPassword,
    InvitationCreate,
    InvitationRead,
    InvitationStatus,
    OrganizationRead,
    OrganizationUpdate,
    ProfileRead,
    ProfileUpdate,
)
from interventions.references.endpoints import (
    CREATE_ERRORS,
    Operation,
    PathId,
    add_archive,
    add_get,
    add_list,
    add_update,
    free_text,
)
from interventions.references.paging import Paging, listed
from interventions.transactions import RequestDb
from interventions.wire import MAX_SAFE_INTEGER, Envelope, ListEnvelope

# --- profiles: the shared shape, but for the invitation that replaces creation ------------------

profile_router = APIRouter(route_class=LeanRoute, prefix="/profiles/v1/rs", tags=["profiles"])
ProfileId = PathId("profileId", "profile")
RoleFilter = Annotated[
    Literal[Role.ADMIN, Role.MANAGER, Role.VIEWER] | None, Query(description="Only this role.")
]

add_list(
    profile_router,
    Operation("listProfiles", "List the organisation's members"),
    profiles.list_profiles,
    read=ProfileRead,
    filters={
        "role": RoleFilter,
        "q": free_text("Case-insensitive part of the e-mail, first or last name."),
    },
    archivable=True,
)
add_get(
    profile_router,
    Operation("getProfile", "Read one member"),
    profiles.get_profile,
    read=ProfileRead,
    row_id=ProfileId,
    archivable=True,
)


@profile_router.post(
    "",
    operation_id="inviteProfile",
    status_code=202,
    response_model=Envelope[InvitationRead],
    responses=errors_for(*CREATE_ERRORS, 409, 429),
    summary="Invite a member (admins only): e-mails an invitation, nobody joins until accepted",
    description=(
        "Creates no profile: the invited person accepts with the e-mailed token "
        "(`/invitations/v1/rs/accept`…), and the profile is created then. The answer is the "
        "same whether the e-mail has an account or not; a member of this organisation is a "
        "409. A new invitation replaces the e-mail's pending one."
    ),
)
async def invite_profile(
    body: InvitationCreate,
    caller: CurrentAdmin,
    db: RequestDb,
    settings: AppSettings,
    request: Request,
) -> Envelope[InvitationRead]:
    invitation = await service.invite(
        await db.executor(),
        settings,
        caller,
        body,
        base_url=settings.public_url or str(request.base_url),
    )
    return Envelope(data=invitation)


add_update(
    profile_router,
    Operation("updateProfile", "Change a member's role (admins only)", errors=(409,)),
    profiles.update_profile,
    read=ProfileRead,
    row_id=ProfileId,
    body=ProfileUpdate,
    writer=CurrentAdmin,
)
add_archive(
    profile_router,
    Operation(
        "archiveProfile",
        "Archive a member (admins only): their access ends at once",
        errors=(409,),
    ),
    profiles.archive_profile,
    row_id=ProfileId,
    writer=CurrentAdmin,
)

# --- invitations --------------------------------------------------------------------------------

invitation_router = APIRouter(
    route_class=LeanRoute, prefix="/invitations/v1/rs", tags=["invitations"]
)

InvitationId = Annotated[
    int,
    Path(
        alias="invitationId",
        description="Unique identifier of the invitation.",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
    ),
]


@invitation_router.get(
    "",
    operation_id="listInvitations",
    response_model=ListEnvelope[InvitationRead],
    responses=errors_for(400, 403),
    summary="List the organisation's invitations (admins only)",
)
async def list_invitations(
    caller: CurrentAdmin,
    db: RequestDb,
    paging: Paging,
    status: Annotated[
        InvitationStatus | None, Query(description=f"Only this status: {STATUS_DESCRIPTION}.")
    ] = None,
) -> ListEnvelope[InvitationRead]:
    found = await service.list_invitations(
        await db.executor(), caller, page=paging.page, page_size=paging.size, status=status
    )
    return listed(paging, found)


@invitation_router.get(
    "/{invitationId}",
    operation_id="getInvitation",
    response_model=Envelope[InvitationRead],
    responses=errors_for(400, 403, 404),
    summary="Read one invitation (admins only)",
)
async def get_invitation(
    invitation_id: InvitationId, caller: CurrentAdmin, db: RequestDb
) -> Envelope[InvitationRead]:
    return Envelope(data=await service.get_invitation(await db.executor(), caller, invitation_id))


@invitation_router.delete(
    "/{invitationId}",
    operation_id="revokeInvitation",
    status_code=204,
    responses=errors_for(400, 403, 404, 409),
    summary="Revoke a pending invitation (admins only): its link stops working at once",
)
async def revoke_invitation(
    invitation_id: InvitationId, caller: CurrentAdmin, db: RequestDb
) -> Response:
    await service.revoke_invitation(await db.executor(), caller, invitation_id)
    return Response(status_code=204)


@invitation_router.post(
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
    body: InvitationAccept, caller: CurrentCaller, db: RequestDb
) -> Envelope[ProfileRead]:
    return Envelope(data=await service.accept_as_caller(await db.executor(), caller, body.token))


@invitation_router.post(
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
    body: InvitationAcceptWithPassword,
    request: Request,
    database: AppDatabase,
    settings: AppSettings,
    gate: Gate,
) -> Envelope[ProfileRead]:
    profile = await service.accept_with_password(
        database,
        settings,
        gate,
        body,
        client=request.client.host if request.client else "unknown",
    )
    return Envelope(data=profile)


# --- the organisation itself --------------------------------------------------------------------

organization_router = APIRouter(
    route_class=LeanRoute, prefix="/organizations/v1/rs", tags=["organizations"]
)


@organization_router.get(
    "/current",
    operation_id="getCurrentOrganization",
    response_model=Envelope[OrganizationRead],
    responses=errors_for(),
    summary="Read the caller's organisation and its settings",
)
async def get_current_organization(
    caller: CurrentCaller, db: RequestDb
) -> Envelope[OrganizationRead]:
    return Envelope(data=await service.current_organization(await db.executor(), caller))


@organization_router.patch(
    "/current",
    operation_id="updateCurrentOrganization",
    response_model=Envelope[OrganizationRead],
    responses=errors_for(400, 403, 413, 415),
    summary="Change the organisation's settings (admins only): autoAcceptAfterDays",
    description=(
        "`autoAcceptAfterDays` (1 to 365, or null): executed interventions (status 4) not "
        "verified within that many days of their `actualEnd` are accepted by the service "
        "(status 5, no verifier, decision comment 'Accepted automatically after N days'), "
        "recorded in the journal as the system's `auto-accept`."
    ),
)
async def update_current_organization(
    body: OrganizationUpdate, caller: CurrentAdmin, db: RequestDb
) -> Envelope[OrganizationRead]:
    return Envelope(data=await service.update_organization(await db.executor(), caller, body))


routers = [profile_router, invitation_router, organization_router]
