"""The use cases every reference resource shares: list, read, create, update and archive the
rows of one table of the caller's organisation.

A resource package describes itself once (a ``Resource``: its model, read schema, list
filters, and where it differs from the plain case: how a body makes or changes a row, how
rows are read out, what archiving takes along) and gets the five use cases from here.
Services validate, change rows and flush; the request commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import Caller
from interventions.db import utcnow
from interventions.references import repository as refs
from interventions.references.paging import Page

ReadT = TypeVar("ReadT", bound=BaseModel)
CreateT = TypeVar("CreateT", bound=BaseModel)
UpdateT = TypeVar("UpdateT", bound=BaseModel)


def new_row(model: Any, caller: Caller, body: BaseModel) -> Any:
    """A row of the caller's organisation made of the body's fields (named as the columns)."""
    return model(organization_id=caller.organization_id, created_at=utcnow(), **body.model_dump())


def assign_given(row: Any, body: BaseModel) -> None:
    """Copy the fields the body gives onto the row. A field that refuses ``null`` is never
    ``None`` when given; one that accepts it (``email``, ``description``) is cleared."""
    for name in body.model_fields_set:
        setattr(row, name, getattr(body, name))


@dataclass(frozen=True, kw_only=True)
class Resource(Generic[ReadT, CreateT, UpdateT]):
    """One kind of reference row of an organisation, and its use cases.

    ``insert`` makes the new row of a create body (checking what it names); by default,
    ``new_row``. It may return a row the session already holds (a revived one), and flush
    itself. ``change`` applies an update body to the locked row; by default,
    ``assign_given``. ``reads`` turns rows into their wire form in a fixed number of
    statements, when ``read.model_validate`` is not enough. ``cascade`` archives, with a row,
    what must not stay referenceable without it. ``filters`` are the list's, by the name of
    their keyword argument, in the order they apply.
    """

    model: Any
    label: str
    read: type[ReadT]
    filters: Mapping[str, refs.Condition] = field(default_factory=dict)
    insert: Callable[[AsyncSession, Caller, CreateT], Awaitable[Any]] | None = None
    change: Callable[[AsyncSession, Caller, Any, UpdateT], Awaitable[None]] | None = None
    reads: Callable[[AsyncSession, Sequence[Any]], Awaitable[list[ReadT]]] | None = None
    cascade: Callable[[AsyncSession, Any, dt.datetime], Awaitable[None]] | None = None

    async def _read(self, session: AsyncSession, rows: Sequence[Any]) -> list[ReadT]:
        if self.reads is not None:
            return await self.reads(session, rows)
        return [self.read.model_validate(row) for row in rows]

    async def _locked(self, session: AsyncSession, caller: Caller, row_id: int) -> Any:
        return await refs.get_row(
            session, self.model, caller.organization_id, row_id, label=self.label, for_update=True
        )

    async def list_page(
        self,
        session: AsyncSession,
        caller: Caller,
        page: Page,
        *,
        include_archived: bool = False,
        **filters: Any,
    ) -> tuple[list[ReadT], int]:
        """One page of the organisation's rows, by id, with the filters given (not ``None``)."""
        stmt = refs.readable(self.model, caller.organization_id, include_archived=include_archived)
        for name, condition in self.filters.items():
            if filters.get(name) is not None:
                stmt = stmt.where(condition(filters[name]))
        rows, total = await refs.page_of(
            session, stmt.order_by(self.model.id), page=page.page, page_size=page.size
        )
        return await self._read(session, rows), total

    async def get(
        self, session: AsyncSession, caller: Caller, row_id: int, *, include_archived: bool = False
    ) -> ReadT:
        row = await refs.get_row(
            session,
            self.model,
            caller.organization_id,
            row_id,
            label=self.label,
            include_archived=include_archived,
        )
        return (await self._read(session, [row]))[0]

    async def create(self, session: AsyncSession, caller: Caller, body: CreateT) -> ReadT:
        if self.insert is None:
            row = new_row(self.model, caller, body)
        else:
            row = await self.insert(session, caller, body)
        session.add(row)
        await session.flush()
        return (await self._read(session, [row]))[0]

    async def update(
        self, session: AsyncSession, caller: Caller, row_id: int, body: UpdateT
    ) -> ReadT:
        row = await self._locked(session, caller, row_id)
        if self.change is None:
            assign_given(row, body)
        else:
            await self.change(session, caller, row, body)
        await session.flush()
        return (await self._read(session, [row]))[0]

    async def archive(self, session: AsyncSession, caller: Caller, row_id: int) -> None:
        """Archived rows are missing from lists, reads and references; they stay in the
        tables (interventions keep naming them)."""
        row = await self._locked(session, caller, row_id)
        now = utcnow()
        row.archived_at = now
        if self.cascade is not None:
            await self.cascade(session, row, now)
        await session.flush()
