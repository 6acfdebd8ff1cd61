"""``/interventions/v2/mb``: the mobile application's intervention endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from interventions.auth.dependencies import CurrentWriter
from interventions.config import AppSettings, Settings
from interventions.handlers import LeanRoute
from interventions.interventions import conditions, onsite, service
from interventions.interventions.conditions import IF_MATCH, if_match, tagged, with_etag
from interventions.interventions.schemas import (
    CheckInRequest,
    ExecuteRequest,
    InterventionRead,
    SignedIntervention,
    UnplannedCreate,
)
from interventions.openapi import errors_for
from interventions.storage.dependencies import CurrentStorage
from interventions.transactions import RequestDb
from interventions.wire import Envelope

router = APIRouter(
    route_class=LeanRoute, prefix="/interventions/v2/mb", tags=["interventions (mobile)"]
)


def public_base_url(settings: Settings, request: Request) -> str:
    return settings.public_url or str(request.base_url)


@router.post(
    "/preventive/unplanned",
    operation_id="createUnplannedPreventive",
    status_code=201,
    response_model=SignedIntervention,
    responses={**errors_for(400, 403, 413, 415, 422), **with_etag(201)},
    summary="Create unplanned preventive intervention",
)
async def create_unplanned(
    request: Request,
    body: UnplannedCreate,
    caller: CurrentWriter,
    db: RequestDb,
    settings: AppSettings,
    storage: CurrentStorage,
    response: Response,
) -> SignedIntervention:
    read, url = await service.create_unplanned(
        await db.executor(),
        caller,
        body,
        settings,
        public_base_url(settings, request),
        storage,
    )
    response.headers["ETag"] = conditions.etag_of(read)
    return SignedIntervention(data=read, presigned_url=url)


@router.patch(
    "/check-in",
    operation_id="checkIn",
    openapi_extra=IF_MATCH,
    response_model=Envelope[InterventionRead],
    responses={**errors_for(400, 403, 404, 409, 412, 413, 415, 422, 429), **with_etag(200)},
    summary="Check in on site with the intervention's PIN",
    description=(
        "Moves a planned intervention (status 1 or 2) to in progress (3) and sets "
        "`actualStart`. A wrong PIN is a 422; too many wrong PINs for the intervention or "
        "from the caller within the window are a 429 with `Retry-After`."
    ),
)
async def check_in(
    request: Request,
    body: CheckInRequest,
    caller: CurrentWriter,
    db: RequestDb,
    settings: AppSettings,
    response: Response,
) -> Envelope[InterventionRead]:
    read = await onsite.check_in(
        await db.executor(),
        settings,
        caller,
        body.intervention_id,
        body.code_pin,
        if_match=if_match(request),
    )
    return tagged(response, read)


@router.patch(
    "/execute",
    operation_id="executeIntervention",
    openapi_extra=IF_MATCH,
    response_model=SignedIntervention,
    responses={**errors_for(400, 403, 404, 409, 412, 413, 415, 422), **with_etag(200)},
    summary="Execute a checked-in intervention, with the provider's signature",
    description=(
        "From in progress (3) to to verify (4): sets `actualEnd` and the provider's members, "
        "notifies the organisation's admins and managers, and returns `presignedUrl` where "
        "the signature image is to be uploaded (HTTP PUT)."
    ),
)
async def execute(
    request: Request,
    body: ExecuteRequest,
    caller: CurrentWriter,
    db: RequestDb,
    settings: AppSettings,
    storage: CurrentStorage,
    response: Response,
) -> SignedIntervention:
    read, url = await onsite.execute(
        await db.executor(),
        caller,
        body,
        settings,
        public_base_url(settings, request),
        storage,
        if_match=if_match(request),
    )
    response.headers["ETag"] = conditions.etag_of(read)
    return SignedIntervention(data=read, presigned_url=url)
