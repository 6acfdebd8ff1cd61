"""``/integrations/v1/rs/webhooks``: the organisation's webhook endpoints and their delivery
log (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from interventions.config import AppSettings
from interventions.handlers import LeanRoute
from interventions.integrations.webhooks import service
from interventions.integrations.webhooks.dependencies import WebhookAdmin
from interventions.integrations.webhooks.schemas import (
    DELIVERY_STATUS_DESCRIPTION,
    DeliveryRead,
    DeliveryStatus,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from interventions.openapi import errors_for
from interventions.references.paging import Paging, listed
from interventions.transactions import RequestDb
from interventions.wire import MAX_SAFE_INTEGER, Envelope, ListEnvelope

router = APIRouter(route_class=LeanRoute, prefix="/integrations/v1/rs/webhooks", tags=["webhooks"])

WebhookId = Annotated[
    int,
    Path(
        alias="webhookId",
        description="Unique identifier of the webhook endpoint.",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
    ),
]
DeliveryId = Annotated[
    int,
    Path(
        alias="deliveryId",
        description="Unique identifier of the delivery.",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
    ),
]
StatusFilter = Annotated[
    DeliveryStatus | None, Query(description=f"Only this status: {DELIVERY_STATUS_DESCRIPTION}.")
]


@router.post(
    "",
    operation_id="createWebhook",
    status_code=201,
    response_model=Envelope[WebhookWithSecret],
    responses=errors_for(400, 403, 413, 415, 422),
    summary="Create a webhook endpoint (admins only); its secret is shown this once",
    description=(
        "Events are POSTed to `url`, signed per the Standard Webhooks specification "
        "(`webhook-id`, `webhook-timestamp`, `webhook-signature` with the `whsec_…` secret "
        "of the answer). The endpoint receives what happens from its creation on. A URL that "
        "does not resolve, or resolves to a loopback, private, link-local or multicast "
        "address (unless the operator allows private networks), is a 422 on `url`."
    ),
)
async def create_webhook(
    body: WebhookCreate, caller: WebhookAdmin, db: RequestDb, settings: AppSettings
) -> Envelope[WebhookWithSecret]:
    return Envelope(data=await service.create(db, settings, caller, body))


@router.get(
    "",
    operation_id="listWebhooks",
    response_model=ListEnvelope[WebhookRead],
    responses=errors_for(400, 403),
    summary="List the organisation's webhook endpoints (admins only; deleted ones left out)",
)
async def list_webhooks(
    caller: WebhookAdmin, db: RequestDb, paging: Paging
) -> ListEnvelope[WebhookRead]:
    found = await service.list_endpoints(
        await db.executor(), caller, page=paging.page, page_size=paging.size
    )
    return listed(paging, found)


@router.get(
    "/{webhookId}",
    operation_id="getWebhook",
    response_model=Envelope[WebhookRead],
    responses=errors_for(400, 403, 404),
    summary="Read one webhook endpoint (admins only; deleted ones too)",
)
async def get_webhook(
    webhook_id: WebhookId, caller: WebhookAdmin, db: RequestDb
) -> Envelope[WebhookRead]:
    return Envelope(data=await service.get_endpoint(await db.executor(), caller, webhook_id))


@router.patch(
    "/{webhookId}",
    operation_id="updateWebhook",
    response_model=Envelope[WebhookRead],
    responses=errors_for(400, 403, 404, 409, 413, 415, 422),
    summary="Change a webhook endpoint's URL, events, description, or enable / disable it",
    description=(
        "A deleted endpoint is a 409. Re-enabling sends what happened while it was disabled. "
        "A new URL is checked as at creation (422 on `url`)."
    ),
)
async def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    caller: WebhookAdmin,
    db: RequestDb,
    settings: AppSettings,
) -> Envelope[WebhookRead]:
    return Envelope(data=await service.update_endpoint(db, settings, caller, webhook_id, body))


@router.post(
    "/{webhookId}/secret",
    operation_id="rotateWebhookSecret",
    response_model=Envelope[WebhookWithSecret],
    responses=errors_for(400, 403, 404, 409),
    summary="Rotate a webhook endpoint's secret (admins only); the new one is shown this once",
    description="Every attempt from now on is signed with the new secret. Deleted: 409.",
)
async def rotate_webhook_secret(
    webhook_id: WebhookId, caller: WebhookAdmin, db: RequestDb
) -> Envelope[WebhookWithSecret]:
    return Envelope(data=await service.rotate_secret(await db.executor(), caller, webhook_id))


@router.delete(
    "/{webhookId}",
    operation_id="deleteWebhook",
    status_code=204,
    responses=errors_for(400, 403, 404, 409),
    summary="Delete a webhook endpoint (admins only): nothing more is sent; its log stays",
    description="It stays readable with `deletedAt`, with its delivery log. Twice: 409.",
)
async def delete_webhook(webhook_id: WebhookId, caller: WebhookAdmin, db: RequestDb) -> Response:
    await service.delete_endpoint(await db.executor(), caller, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhookId}/deliveries",
    operation_id="listWebhookDeliveries",
    response_model=ListEnvelope[DeliveryRead],
    responses=errors_for(400, 403, 404),
    summary="An endpoint's delivery log, newest first (admins only)",
)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    caller: WebhookAdmin,
    db: RequestDb,
    paging: Paging,
    status: StatusFilter = None,
) -> ListEnvelope[DeliveryRead]:
    found = await service.list_deliveries(
        await db.executor(),
        caller,
        webhook_id,
        status=status,
        page=paging.page,
        page_size=paging.size,
    )
    return listed(paging, found)


@router.post(
    "/{webhookId}/deliveries/{deliveryId}/replay",
    operation_id="replayWebhookDelivery",
    status_code=202,
    response_model=Envelope[DeliveryRead],
    responses=errors_for(400, 403, 404, 409),
    summary="Send a delivery again: the same message (id and payload), a new series of attempts",
    description=(
        "409 while the endpoint is disabled or deleted, or while the delivery is being sent."
    ),
)
async def replay_webhook_delivery(
    webhook_id: WebhookId, delivery_id: DeliveryId, caller: WebhookAdmin, db: RequestDb
) -> Envelope[DeliveryRead]:
    replayed = await service.replay(await db.executor(), caller, webhook_id, delivery_id)
    return Envelope(data=replayed)
