"""``/interventions/v2/mb``: the mobile application's intervention endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import CurrentWriter
from interventions.db import write_session
from interventions.interventions import service
from interventions.interventions.schemas import UnplannedCreate, UnplannedCreated
from interventions.openapi import errors_for

router = APIRouter(prefix="/interventions/v2/mb", tags=["interventions (mobile)"])


def public_base_url(request: Request) -> str:
    configured: str = request.app.state.settings.public_url
    return configured or str(request.base_url)


@router.post(
    "/preventive/unplanned",
    status_code=201,
    response_model=UnplannedCreated,
    responses=errors_for(400, 403, 413, 415, 422),
    summary="Create unplanned preventive intervention",
)
async def create_unplanned(
    request: Request,
    body: UnplannedCreate,
    caller: CurrentWriter,
    session: Annotated[AsyncSession, Depends(write_session, scope="function")],
) -> UnplannedCreated:
    read, url = await service.create_unplanned(
        session,
        caller,
        body,
        request.app.state.settings,
        public_base_url(request),
        request.app.state.storage,
    )
    return UnplannedCreated(data=read, presigned_url=url)
