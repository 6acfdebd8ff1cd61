"""The endpoints every reference resource shares, produced from a short description.

``resource_router`` gives a ``Resource`` its list (paged, filtered), read, create, update and
archive endpoints: ``GET ""``, ``GET /{id}``, ``POST ""``, ``PATCH /{id}``, ``DELETE /{id}``
(archiving; resources whose rows are not archived have no ``DELETE``: 405). Each operation
names its stable ``operationId`` and summary; its documented errors are its kind's, plus
the ones it names. Archived rows are missing from lists and reads unless
``includeArchived=true``. The ``add_*`` functions produce one endpoint each, for services
that are not a ``Resource`` (profiles).

The endpoints' parameters vary with the resource (its path id, its filters, its bodies), so
each endpoint is a plain function whose signature, as FastAPI reads it, is declared
(``_route``): the same dependencies, in the same order, as a hand-written endpoint's.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from interventions.auth.dependencies import Caller, CurrentCaller, CurrentWriter
from interventions.db import Executor
from interventions.handlers import LeanRoute
from interventions.openapi import errors_for
from interventions.references.paging import Page, Paging, listed
from interventions.references.resource import Resource
from interventions.transactions import RequestDatabase, RequestDb
from interventions.wire import MAX_SAFE_INTEGER, Envelope, ListEnvelope, Storable

CREATE_ERRORS = (400, 403, 413, 415)
UPDATE_ERRORS = (*CREATE_ERRORS, 404)
ARCHIVE_ERRORS = (400, 403, 404)

IncludeArchived = Annotated[bool, Query(alias="includeArchived", description="Also archived rows.")]


def free_text(description: str = "Case-insensitive part of the name.") -> Any:
    """The ``q`` filter."""
    return Annotated[
        Annotated[str, Storable] | None,
        Query(min_length=1, max_length=250, description=description),
    ]


def id_filter(alias: str, description: str) -> Any:
    """A filter on the id of another resource (``siteId``…)."""
    return Annotated[
        int | None,
        Query(alias=alias, description=description, ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER),
    ]


@dataclass(frozen=True)
class PathId:
    """The id in an endpoint's path: ``alias`` is its wire name, ``label`` what it names."""

    alias: str
    label: str

    @property
    def path(self) -> str:
        return "/{" + self.alias + "}"

    @property
    def annotation(self) -> Any:
        description = f"Unique identifier of the {self.label}."
        return Annotated[
            int,
            Path(
                alias=self.alias,
                description=description,
                ge=-MAX_SAFE_INTEGER,
                le=MAX_SAFE_INTEGER,
            ),
        ]


@dataclass(frozen=True)
class Operation:
    """One endpoint as the document names it. ``id`` is its operationId: clients are
    generated from it, so it never changes. ``errors``: statuses beyond its kind's."""

    id: str
    summary: str
    errors: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Operations:
    """The endpoints of a resource; without ``archive``, its rows are not archived."""

    list: Operation
    get: Operation
    create: Operation
    update: Operation
    archive: Operation | None = None


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def _enveloped(envelope: type[BaseModel], read: type[BaseModel]) -> Any:
    """``Envelope[read]`` or ``ListEnvelope[read]``: the response model, chosen at run time."""
    return envelope[read]  # type: ignore[index]


def _route(
    router: APIRouter,
    method: str,
    path: str,
    endpoint: Callable[..., Any],
    params: Sequence[inspect.Parameter],
    operation: Operation,
    *,
    response: Any,
    errors: Sequence[int],
    status_code: int | None = None,
) -> None:
    """Add ``endpoint`` with the parameters FastAPI is to read (the function itself takes
    them as keywords) and its operation's documentation."""
    returns = Response if response is None else response
    endpoint.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        name=operation.id,
        operation_id=operation.id,
        status_code=status_code,
        response_model=response,
        responses=errors_for(*errors, *operation.errors),
        summary=operation.summary,
    )


def _row(row_id: PathId, *rest: inspect.Parameter, caller: Any) -> list[inspect.Parameter]:
    """The parameters of an endpoint on one row: its id, ``rest``, the caller, the database."""
    return [
        _param("row_id", row_id.annotation),
        *rest,
        _param("caller", caller),
        _param("db", RequestDb),
    ]


def add_list(
    router: APIRouter,
    operation: Operation,
    list_page: Callable[..., Awaitable[tuple[list[Any], int]]],
    *,
    read: type[BaseModel],
    filters: Mapping[str, Any],
    archivable: bool,
) -> None:
    """``GET ""``: one page of rows; ``filters`` are query parameters, by their keyword in
    ``list_page``, each ``None`` when absent."""

    async def endpoint(
        caller: Caller,
        db: RequestDatabase,
        paging: Page,
        include_archived: bool = False,
        **given: Any,
    ) -> ListEnvelope[Any]:
        found = await list_page(
            await db.executor(), caller, paging, include_archived=include_archived, **given
        )
        return listed(paging, found)

    params = [
        _param("caller", CurrentCaller),
        _param("db", RequestDb),
        _param("paging", Paging),
        *(_param(name, annotation, None) for name, annotation in filters.items()),
    ]
    if archivable:
        params.append(_param("include_archived", IncludeArchived, False))
    response = _enveloped(ListEnvelope, read)
    _route(router, "GET", "", endpoint, params, operation, response=response, errors=(400,))


def add_get(
    router: APIRouter,
    operation: Operation,
    get: Callable[..., Awaitable[BaseModel]],
    *,
    read: type[BaseModel],
    row_id: PathId,
    archivable: bool,
) -> None:
    """``GET /{id}``: one row, else 404."""

    async def endpoint(
        row_id: int, caller: Caller, db: RequestDatabase, include_archived: bool = False
    ) -> Envelope[Any]:
        found = await get(await db.executor(), caller, row_id, include_archived=include_archived)
        return Envelope(data=found)

    params = _row(row_id, caller=CurrentCaller)
    if archivable:
        params.append(_param("include_archived", IncludeArchived, False))
    response = _enveloped(Envelope, read)
    _route(
        router,
        "GET",
        row_id.path,
        endpoint,
        params,
        operation,
        response=response,
        errors=(400, 404),
    )


def add_create(
    router: APIRouter,
    operation: Operation,
    create: Callable[[Executor, Caller, Any], Awaitable[BaseModel]],
    *,
    read: type[BaseModel],
    body: type[BaseModel],
    writer: Any = CurrentWriter,
) -> None:
    """``POST ""``: 201 with the new row."""

    async def endpoint(body: BaseModel, caller: Caller, db: RequestDatabase) -> Envelope[Any]:
        return Envelope(data=await create(await db.executor(), caller, body))

    params = [_param("body", body), _param("caller", writer), _param("db", RequestDb)]
    response = _enveloped(Envelope, read)
    _route(
        router,
        "POST",
        "",
        endpoint,
        params,
        operation,
        response=response,
        errors=CREATE_ERRORS,
        status_code=201,
    )


def add_update(
    router: APIRouter,
    operation: Operation,
    update: Callable[..., Awaitable[BaseModel]],
    *,
    read: type[BaseModel],
    row_id: PathId,
    body: type[BaseModel],
    writer: Any = CurrentWriter,
) -> None:
    """``PATCH /{id}``: the fields given change, the others stay."""

    async def endpoint(
        row_id: int, body: BaseModel, caller: Caller, db: RequestDatabase
    ) -> Envelope[Any]:
        return Envelope(data=await update(await db.executor(), caller, row_id, body))

    params = _row(row_id, _param("body", body), caller=writer)
    response = _enveloped(Envelope, read)
    _route(
        router,
        "PATCH",
        row_id.path,
        endpoint,
        params,
        operation,
        response=response,
        errors=UPDATE_ERRORS,
    )


def add_archive(
    router: APIRouter,
    operation: Operation,
    archive: Callable[..., Awaitable[None]],
    *,
    row_id: PathId,
    writer: Any = CurrentWriter,
) -> None:
    """``DELETE /{id}``: 204; the row is archived, not deleted."""

    async def endpoint(row_id: int, caller: Caller, db: RequestDatabase) -> Response:
        await archive(await db.executor(), caller, row_id)
        return Response(status_code=204)

    params = _row(row_id, caller=writer)
    _route(
        router,
        "DELETE",
        row_id.path,
        endpoint,
        params,
        operation,
        response=None,
        errors=ARCHIVE_ERRORS,
        status_code=204,
    )


def resource_router(
    resource: Resource[Any, Any, Any],
    *,
    prefix: str,
    tag: str,
    path_id: str,
    bodies: tuple[type[BaseModel], type[BaseModel]],
    operations: Operations,
    filters: Mapping[str, Any] | None = None,
) -> APIRouter:
    """The router of ``resource`` at ``prefix``: ``path_id`` names its rows' id in paths,
    ``bodies`` are its create and update bodies, ``filters`` its list's query parameters
    (annotated types, by the name of the resource's filter they feed)."""
    filters = filters or {}
    unknown = set(filters) - set(resource.filters)
    if unknown:
        raise ValueError(f"The {resource.label} service has no filter {sorted(unknown)}.")
    router = APIRouter(route_class=LeanRoute, prefix=prefix, tags=[tag])
    row_id = PathId(path_id, resource.label)
    archivable = operations.archive is not None
    create, update = bodies
    read = resource.read
    add_list(
        router,
        operations.list,
        resource.list_page,
        read=read,
        filters=filters,
        archivable=archivable,
    )
    add_get(router, operations.get, resource.get, read=read, row_id=row_id, archivable=archivable)
    add_create(router, operations.create, resource.create, read=read, body=create)
    add_update(router, operations.update, resource.update, read=read, row_id=row_id, body=update)
    if operations.archive is not None:
        add_archive(router, operations.archive, resource.archive, row_id=row_id)
    return router
