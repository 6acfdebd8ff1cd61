"""``/notifications/v1/rs``: the caller's in-app notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from interventions.auth.dependencies import CurrentCaller
from interventions.handlers import LeanRoute
from interventions.notifications import service
from interventions.notifications.schemas import NotificationRead
from interventions.openapi import errors_for
from interventions.transactions import RequestDb
from interventions.wire import ListEnvelope, Pagination

router = APIRouter(route_class=LeanRoute, prefix="/notifications/v1/rs", tags=["notifications"])


@router.get(
    "",
    operation_id="listNotifications",
    response_model=ListEnvelope[NotificationRead],
    responses=errors_for(400),
    summary="My notifications, newest first",
)
async def list_notifications(
    caller: CurrentCaller,
    db: RequestDb,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> ListEnvelope[NotificationRead]:
    rows, total = await service.list_for_user(
        await db.executor(),
        organization_id=caller.organization_id,
        user_id=caller.user_id,
        page=page,
        page_size=page_size,
    )
    return ListEnvelope(
        data=[NotificationRead.model_validate(r) for r in rows],
        total_count=total,
        pagination=Pagination(page=page, page_size=page_size),
    )
