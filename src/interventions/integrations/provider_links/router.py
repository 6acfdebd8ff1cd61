"""Provider links: managed by the organisation under ``/interventions/v2/rs/{id}/provider-links``
(admins and managers), used by the provider under ``/provider/v1/{token}`` (public: the token
is the credential, no Authorization header)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from interventions.auth.dependencies import CurrentWriter
from interventions.config import AppSettings
from interventions.handlers import LeanRoute
from interventions.integrations.provider_links import service
from interventions.integrations.provider_links.schemas import (
    ProviderCheckIn,
    ProviderIntervention,
    ProviderLinkCreate,
    ProviderLinkCreated,
    ProviderLinkRead,
    SignedProviderIntervention,
)
from interventions.interventions.mobile import public_base_url
from interventions.interventions.schemas import ExecutionFields
from interventions.interventions.web import InterventionId
from interventions.openapi import errors_for
from interventions.references.paging import Paging, listed
from interventions.storage.dependencies import CurrentStorage
from interventions.transactions import RequestDb
from interventions.wire import MAX_SAFE_INTEGER, Envelope, ListEnvelope

router = APIRouter(route_class=LeanRoute, prefix="/interventions/v2/rs", tags=["provider links"])

LinkId = Annotated[
    int,
    Path(
        alias="linkId",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
        description="Unique identifier of the provider link.",
    ),
]


@router.post(
    "/{interventionId}/provider-links",
    operation_id="createProviderLink",
    status_code=201,
    response_model=Envelope[ProviderLinkCreated],
    responses=errors_for(400, 403, 404, 409, 413, 415, 422),
    summary="Create a provider link for the intervention's assigned company contact",
    description=(
        "A scoped, expiring, revocable link (`url`, shown once: only the token's SHA-256 is "
        "kept) through which the assigned company contact reads this intervention, checks in "
        "with the PIN, executes and uploads the signature, and nothing else. 422 when the "
        "intervention has no (active) assigned company contact, or `expiresAt` is not in the "
        "next 90 days; 409 when it is cancelled. The body is optional."
    ),
)
async def create_provider_link(
    request: Request,
    intervention_id: InterventionId,
    caller: CurrentWriter,
    db: RequestDb,
    settings: AppSettings,
    body: ProviderLinkCreate | None = None,
) -> Envelope[ProviderLinkCreated]:
    created = await service.create(
        await db.executor(),
        caller,
        intervention_id,
        body.expires_at if body is not None else None,
        public_base_url(settings, request),
    )
    return Envelope(data=created)


@router.get(
    "/{interventionId}/provider-links",
    operation_id="listProviderLinks",
    response_model=ListEnvelope[ProviderLinkRead],
    responses=errors_for(400, 403, 404),
    summary="List the intervention's provider links (without their tokens), newest first",
)
async def list_provider_links(
    intervention_id: InterventionId, caller: CurrentWriter, db: RequestDb, paging: Paging
) -> ListEnvelope[ProviderLinkRead]:
    found = await service.list_links(
        await db.executor(), caller, intervention_id, page=paging.page, page_size=paging.size
    )
    return listed(paging, found)


@router.delete(
    "/{interventionId}/provider-links/{linkId}",
    operation_id="revokeProviderLink",
    status_code=204,
    responses=errors_for(400, 403, 404, 409),
    summary="Revoke a provider link: it stops working at once",
)
async def revoke_provider_link(
    intervention_id: InterventionId, link_id: LinkId, caller: CurrentWriter, db: RequestDb
) -> Response:
    await service.revoke(await db.executor(), caller, intervention_id, link_id)
    return Response(status_code=204)


# --- the provider's side: public, the token is the credential ----------------------------------

provider_router = APIRouter(route_class=LeanRoute, prefix="/provider/v1", tags=["provider (link)"])

Token = Annotated[
    str,
    Path(
        description=(
            "The provider link's token. Unknown, expired, revoked, or of an intervention no "
            "longer assigned to the link's contact: 404, the same answer for all."
        )
    ),
]


@provider_router.get(
    "/{token}",
    operation_id="readProviderIntervention",
    response_model=Envelope[ProviderIntervention],
    responses=errors_for(400, 404, auth=False),
    summary="The intervention, as its provider sees it through the link",
    description=(
        "No Authorization header: the link's token is the credential. The intervention's "
        "dates, sites, rules, anomalies, status and what the provider may do now; not its PIN, "
        "nor the organisation's people."
    ),
)
async def read_provider_intervention(token: Token, db: RequestDb) -> Envelope[ProviderIntervention]:
    return Envelope(data=await service.read(await db.executor(), token))


@provider_router.patch(
    "/{token}/check-in",
    operation_id="checkInWithProviderLink",
    response_model=Envelope[ProviderIntervention],
    responses=errors_for(400, 404, 409, 413, 415, 422, 429, auth=False),
    summary="Check in on site with the intervention's PIN, through the link",
    description=(
        "As the mobile check-in: from status 1 or 2 to in progress (3), `actualStart` set. A "
        "wrong PIN is a 422; too many wrong PINs for the intervention or through the link "
        "within the window are a 429 with `Retry-After`."
    ),
)
async def check_in_with_provider_link(
    token: Token, body: ProviderCheckIn, db: RequestDb, settings: AppSettings
) -> Envelope[ProviderIntervention]:
    return Envelope(
        data=await service.check_in(await db.executor(), settings, token, body.code_pin)
    )


@provider_router.patch(
    "/{token}/execute",
    operation_id="executeWithProviderLink",
    response_model=SignedProviderIntervention,
    responses=errors_for(400, 404, 409, 413, 415, 422, auth=False),
    summary="Execute the checked-in intervention, with the signature, through the link",
    description=(
        "As the mobile execution (its body without `interventionId`): from in progress (3) "
        "to to verify (4), the provider's members set, the organisation's admins and managers "
        "notified; `presignedUrl` is where the signature image is to be uploaded (HTTP PUT)."
    ),
)
async def execute_with_provider_link(
    request: Request,
    token: Token,
    body: ExecutionFields,
    db: RequestDb,
    settings: AppSettings,
    storage: CurrentStorage,
) -> SignedProviderIntervention:
    read, url = await service.execute(
        await db.executor(), settings, token, body, public_base_url(settings, request), storage
    )
    return SignedProviderIntervention(data=read, presigned_url=url)


routers = [router, provider_router]
