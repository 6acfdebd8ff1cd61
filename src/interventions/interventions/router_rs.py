"""``/interventions/v2/rs``: the web application's intervention endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import CurrentCaller, CurrentWriter
from interventions.db import read_session, write_session
from interventions.interventions import service
from interventions.interventions.schemas import (
    CurativeCreate,
    InterventionRead,
    PreventiveUpdate,
    RoutineInterventionCreate,
    TrainingCreate,
    TrainingUpdate,
    VerifyRequest,
)
from interventions.openapi import errors_for
from interventions.wire import MAX_SAFE_INTEGER, Envelope

router = APIRouter(prefix="/interventions/v2/rs", tags=["interventions"])

InterventionId = Annotated[
    int,
    Path(
        alias="interventionId",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
        description="Unique identifier of the intervention.",
    ),
]
WriteSession = Annotated[AsyncSession, Depends(write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(read_session)]

WRITE_ERRORS = (400, 403, 413, 415, 422)


@router.post(
    "/curative",
    status_code=201,
    response_model=Envelope[InterventionRead],
    responses=errors_for(*WRITE_ERRORS, 409),
    summary="Create curative intervention with anomalies",
)
async def create_curative(
    body: CurativeCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[InterventionRead]:
    return Envelope(data=await service.create_curative(session, caller, body))


@router.post(
    "/preventive/routine",
    status_code=201,
    response_model=Envelope[InterventionRead],
    responses=errors_for(*WRITE_ERRORS),
    summary="Create a preventive intervention from a routine",
)
async def create_from_routine(
    body: RoutineInterventionCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[InterventionRead]:
    return Envelope(data=await service.create_from_routine(session, caller, body))


@router.post(
    "/training-exercise",
    status_code=201,
    response_model=Envelope[InterventionRead],
    responses=errors_for(*WRITE_ERRORS),
    summary="Create a training exercise",
)
async def create_training(
    body: TrainingCreate, caller: CurrentWriter, session: WriteSession
) -> Envelope[InterventionRead]:
    return Envelope(data=await service.create_training(session, caller, body))


@router.patch(
    "/preventive/{interventionId}",
    response_model=Envelope[InterventionRead],
    responses=errors_for(*WRITE_ERRORS, 404, 409),
    summary="Update preventive intervention scheduled",
)
async def update_preventive(
    intervention_id: InterventionId,
    body: PreventiveUpdate,
    caller: CurrentWriter,
    session: WriteSession,
) -> Envelope[InterventionRead]:
    return Envelope(data=await service.update_preventive(session, caller, intervention_id, body))


@router.patch(
    "/training-exercise/{interventionId}",
    response_model=Envelope[InterventionRead],
    responses=errors_for(*WRITE_ERRORS, 404, 409),
    summary="Update training session intervention scheduled",
)
async def update_training(
    intervention_id: InterventionId,
    body: TrainingUpdate,
    caller: CurrentWriter,
    session: WriteSession,
) -> Envelope[InterventionRead]:
    return Envelope(data=await service.update_training(session, caller, intervention_id, body))


@router.patch(
    "/{interventionId}/verify",
    response_model=Envelope[InterventionRead],
    responses=errors_for(*WRITE_ERRORS, 404, 409),
    summary="Accept or reject intervention verification",
)
async def verify(
    intervention_id: InterventionId,
    body: VerifyRequest,
    caller: CurrentWriter,
    session: WriteSession,
) -> Envelope[InterventionRead]:
    return Envelope(data=await service.verify(session, caller, intervention_id, body))


@router.get(
    "/{interventionId}",
    response_model=Envelope[InterventionRead],
    responses=errors_for(400, 404),
    summary="Read one intervention",
)
async def get_intervention(
    intervention_id: InterventionId, caller: CurrentCaller, session: ReadSession
) -> Envelope[InterventionRead]:
    return Envelope(data=await service.get_one(session, caller, intervention_id))
