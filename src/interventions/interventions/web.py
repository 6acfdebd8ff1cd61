"""``/interventions/v2/rs``: the web application's intervention endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from interventions.auth.dependencies import CurrentCaller, CurrentWriter
from interventions.config import AppSettings
from interventions.handlers import LeanRoute
from interventions.interventions import conditions, presenter, replanning, search, service
from interventions.interventions.conditions import (
    IF_MATCH,
    IF_NONE_MATCH,
    Unchanged,
    if_match,
    if_none_match,
    tagged,
    with_etag,
)
from interventions.interventions.schemas import (
    CancelRequest,
    CurativeCreate,
    InformationEmailRequest,
    InterventionDetail,
    InterventionRead,
    LifecycleRead,
    PreventiveUpdate,
    RoutineInterventionCreate,
    TrainingCreate,
    TrainingUpdate,
    VerifyRequest,
)
from interventions.interventions.search import InterventionFilters, SortKey
from interventions.openapi import errors_for
from interventions.transactions import RequestDb
from interventions.wire import (
    MAX_IDS,
    MAX_SAFE_INTEGER,
    DateTimeIn,
    Envelope,
    ListEnvelope,
    Pagination,
    QueryId,
    Text,
)

router = APIRouter(route_class=LeanRoute, prefix="/interventions/v2/rs", tags=["interventions"])

InterventionId = Annotated[
    int,
    Path(
        alias="interventionId",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
        description="Unique identifier of the intervention.",
    ),
]


WRITE_ERRORS = (400, 403, 413, 415, 422)


@router.post(
    "/curative",
    operation_id="createCurative",
    status_code=201,
    response_model=Envelope[InterventionRead],
    responses={**errors_for(*WRITE_ERRORS, 409), **with_etag(201)},
    summary="Create curative intervention with anomalies",
)
async def create_curative(
    body: CurativeCreate, caller: CurrentWriter, db: RequestDb, response: Response
) -> Envelope[InterventionRead]:
    return tagged(response, await service.create_curative(await db.executor(), caller, body))


@router.post(
    "/preventive/routine",
    operation_id="createPreventiveFromRoutine",
    status_code=201,
    response_model=Envelope[InterventionRead],
    responses={**errors_for(*WRITE_ERRORS), **with_etag(201)},
    summary="Create a preventive intervention from a routine",
)
async def create_from_routine(
    body: RoutineInterventionCreate, caller: CurrentWriter, db: RequestDb, response: Response
) -> Envelope[InterventionRead]:
    return tagged(response, await service.create_from_routine(await db.executor(), caller, body))


@router.post(
    "/training-exercise",
    operation_id="createTrainingExercise",
    status_code=201,
    response_model=Envelope[InterventionRead],
    responses={**errors_for(*WRITE_ERRORS), **with_etag(201)},
    summary="Create a training exercise",
)
async def create_training(
    body: TrainingCreate, caller: CurrentWriter, db: RequestDb, response: Response
) -> Envelope[InterventionRead]:
    return tagged(response, await service.create_training(await db.executor(), caller, body))


@router.patch(
    "/preventive/{interventionId}",
    operation_id="updatePreventive",
    openapi_extra=IF_MATCH,
    response_model=Envelope[InterventionRead],
    responses={**errors_for(*WRITE_ERRORS, 404, 409, 412), **with_etag(200)},
    summary="Update preventive intervention scheduled",
)
async def update_preventive(
    intervention_id: InterventionId,
    body: PreventiveUpdate,
    caller: CurrentWriter,
    db: RequestDb,
    response: Response,
    request: Request,
) -> Envelope[InterventionRead]:
    read = await replanning.update_preventive(
        await db.executor(),
        caller,
        intervention_id,
        body,
        if_match=if_match(request),
    )
    return tagged(response, read)


@router.patch(
    "/training-exercise/{interventionId}",
    operation_id="updateTrainingExercise",
    openapi_extra=IF_MATCH,
    response_model=Envelope[InterventionRead],
    responses={**errors_for(*WRITE_ERRORS, 404, 409, 412), **with_etag(200)},
    summary="Update training session intervention scheduled",
)
async def update_training(
    intervention_id: InterventionId,
    body: TrainingUpdate,
    caller: CurrentWriter,
    db: RequestDb,
    response: Response,
    request: Request,
) -> Envelope[InterventionRead]:
    read = await replanning.update_training(
        await db.executor(),
        caller,
        intervention_id,
        body,
        if_match=if_match(request),
    )
    return tagged(response, read)


@router.patch(
    "/{interventionId}/verify",
    operation_id="verifyIntervention",
    openapi_extra=IF_MATCH,
    response_model=Envelope[InterventionRead],
    responses={**errors_for(*WRITE_ERRORS, 404, 409, 412), **with_etag(200)},
    summary="Accept or reject intervention verification",
)
async def verify(
    intervention_id: InterventionId,
    body: VerifyRequest,
    caller: CurrentWriter,
    db: RequestDb,
    response: Response,
    request: Request,
) -> Envelope[InterventionRead]:
    read = await service.verify(
        await db.executor(),
        caller,
        intervention_id,
        body,
        if_match=if_match(request),
    )
    return tagged(response, read)


@router.get(
    "",
    operation_id="listInterventions",
    response_model=ListEnvelope[InterventionRead],
    responses=errors_for(400),
    summary="Find interventions",
    description=(
        "Filters combine with AND; a repeated filter (`status=1&status=2`) matches any of its "
        "values. Date ranges are inclusive. `q` searches the description. `sort` takes "
        "`scheduledStart`, `actualStart`, `createdAt`, `updatedAt`, `status` or `id`, with a "
        "leading `-` for descending order; the default is `-scheduledStart`. `overdue=true` "
        "lists the interventions planned or in progress (status 1, 2, 3) whose `scheduledEnd` "
        "has passed."
    ),
)
async def find_interventions(
    caller: CurrentCaller,
    db: RequestDb,
    status: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Query(max_length=7)] = [],  # noqa: B006
    type: Annotated[list[Annotated[int, Field(ge=1, le=3)]], Query(max_length=3)] = [],  # noqa: B006
    creation_status: Annotated[
        list[Annotated[int, Field(ge=0, le=2)]], Query(alias="creationStatus", max_length=3)
    ] = [],  # noqa: B006
    site_id: Annotated[list[QueryId], Query(alias="siteId", max_length=MAX_IDS)] = [],  # noqa: B006
    site_rule_id: Annotated[list[QueryId], Query(alias="siteRuleId", max_length=MAX_IDS)] = [],  # noqa: B006
    rule_id: Annotated[list[QueryId], Query(alias="ruleId", max_length=MAX_IDS)] = [],  # noqa: B006
    routine_id: Annotated[list[QueryId], Query(alias="routineId", max_length=MAX_IDS)] = [],  # noqa: B006
    assigned_profile_id: Annotated[
        list[QueryId], Query(alias="assignedProfileId", max_length=MAX_IDS)
    ] = [],  # noqa: B006
    company_id: Annotated[list[QueryId], Query(alias="companyId", max_length=MAX_IDS)] = [],  # noqa: B006
    scheduled_from: Annotated[DateTimeIn | None, Query(alias="scheduledStartFrom")] = None,
    scheduled_to: Annotated[DateTimeIn | None, Query(alias="scheduledStartTo")] = None,
    actual_from: Annotated[DateTimeIn | None, Query(alias="actualStartFrom")] = None,
    actual_to: Annotated[DateTimeIn | None, Query(alias="actualStartTo")] = None,
    q: Annotated[Text | None, Query(max_length=250)] = None,
    overdue: Annotated[
        bool | None,
        Query(description="`true`: only overdue interventions; `false`: none of them."),
    ] = None,
    sort: Annotated[list[SortKey], Query(max_length=6)] = [],  # noqa: B006
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> ListEnvelope[InterventionRead]:
    filters = InterventionFilters(
        status=status,
        type=type,
        creation_status=creation_status,
        site_id=site_id,
        site_rule_id=site_rule_id,
        rule_id=rule_id,
        routine_id=routine_id,
        assigned_profile_id=assigned_profile_id,
        company_id=company_id,
        scheduled_from=scheduled_from,
        scheduled_to=scheduled_to,
        actual_from=actual_from,
        actual_to=actual_to,
        q=q or None,
        overdue=overdue,
        sort=sort or [SortKey.SCHEDULED_START_DESC],
    )
    rows, total = await search.find(await db.executor(), caller, filters, page, page_size)
    return ListEnvelope(
        data=rows, total_count=total, pagination=Pagination(page=page, page_size=page_size)
    )


# Before ``/{interventionId}``, which would take ``lifecycle`` for a (bad) id.
@router.get(
    "/lifecycle",
    operation_id="getLifecycle",
    response_model=Envelope[LifecycleRead],
    responses=errors_for(),
    summary="The lifecycle as data: statuses, kinds, transitions, their targets and guards",
    description=(
        "Generated from the table the service obeys: every transition (its `action`, as the "
        "history records it) with the statuses it starts from (`creates`: from no "
        "intervention), its target — a fixed `status`, or a `rule` reading a member of the "
        "request (`values`: each value → status; `keeps`: otherwise the status is kept) — "
        "the types it applies to, its guards (with their refusal) and what it does to a "
        "curative intervention's anomalies. `actionFlags` says which transitions each flag "
        "of an intervention's `actions` stands for. Any role may read it."
    ),
)
async def get_lifecycle(caller: CurrentCaller) -> Envelope[LifecycleRead]:
    return Envelope(data=presenter.lifecycle_read())


@router.get(
    "/{interventionId}",
    operation_id="getIntervention",
    openapi_extra=IF_NONE_MATCH,
    response_model=Envelope[InterventionDetail],
    responses={**errors_for(400, 404), **with_etag(200), **conditions.NOT_MODIFIED},
    summary="Read one intervention, with its sites, rules, anomalies, history and actions",
)
async def get_intervention(
    intervention_id: InterventionId,
    caller: CurrentCaller,
    db: RequestDb,
    response: Response,
    request: Request,
) -> Envelope[InterventionDetail] | Response:
    found = await search.detail(
        await db.executor(),
        caller,
        intervention_id,
        if_none_match=if_none_match(request),
    )
    if isinstance(found, Unchanged):
        return Response(status_code=304, headers={"ETag": found.etag})
    response.headers["ETag"] = conditions.etag_of(found)
    return Envelope(data=found)


@router.delete(
    "/{interventionId}",
    operation_id="cancelIntervention",
    openapi_extra=IF_MATCH,
    status_code=204,
    responses=errors_for(*WRITE_ERRORS, 404, 409, 412),
    summary="Cancel an intervention",
    description=(
        "Status 7 (cancelled) with `deletedAt` and `cancellationReason`, never a physical "
        "delete: the intervention stays in the register, readable, listed under the `status` "
        "filter, and every later write on it is a 409. A curative intervention's anomalies "
        "reopen. Allowed before execution (1, 2, 3) and after a rejection (6). The body is "
        "optional."
    ),
)
async def cancel_intervention(
    intervention_id: InterventionId,
    caller: CurrentWriter,
    db: RequestDb,
    request: Request,
    body: CancelRequest | None = None,
) -> Response:
    await service.cancel(
        await db.executor(),
        caller,
        intervention_id,
        body,
        if_match=if_match(request),
    )
    return Response(status_code=204)


@router.post(
    "/{interventionId}/emails/informations",
    operation_id="sendInformationEmail",
    status_code=204,
    responses=errors_for(*WRITE_ERRORS, 404, 429),
    summary="E-mail the intervention's information (dates, sites, PIN, assignee)",
    description=(
        "With `providerLink: true`, also creates a provider link for the assigned company "
        "contact (default expiry) and puts its URL in the e-mail (422 on `providerLink` when "
        "there is no assigned contact)."
    ),
)
async def send_information_email(
    request: Request,
    intervention_id: InterventionId,
    body: InformationEmailRequest,
    caller: CurrentWriter,
    db: RequestDb,
    settings: AppSettings,
) -> Response:
    base_url = settings.public_url or str(request.base_url)
    await service.send_information(
        await db.executor(), settings, caller, intervention_id, body, base_url
    )
    return Response(status_code=204)
