"""The use cases every reference resource shares: list, read, create, update and archive the
rows of one table of the caller's organisation.

A resource package describes itself once (a ``Resource``: its model, read schema, list
filters, and where it differs from the plain case: what a body inserts or changes, how rows
are read out, what archiving takes along) and gets the five use cases from here, with their
statements, built once per resource (``Statements``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from interventions.auth.dependencies import Caller
from interventions.db import Executor, Sql, table_of, utcnow
from interventions.errors import Conflict, NotFound
from interventions.references import repository as refs
from interventions.references.paging import Page
from interventions.register import journal
from interventions.register.journal import Entry

ReadT = TypeVar("ReadT", bound=BaseModel)
CreateT = TypeVar("CreateT", bound=BaseModel)
UpdateT = TypeVar("UpdateT", bound=BaseModel)

# Columns no update writes.
_FIXED = frozenset({"id", "organization_id", "created_at"})
# What a journal entry about a new row leaves out (the entry has its own time).
_UNRECORDED = frozenset({"created_at", "updated_at"})


def new_row(caller: Caller, body: BaseModel) -> dict[str, Any]:
    """The columns of a row of the caller's organisation made of the body's fields (named as
    the columns)."""
    return {"organization_id": caller.organization_id, "created_at": utcnow(), **body.model_dump()}


def given_fields(body: BaseModel) -> dict[str, Any]:
    """The columns an update body gives. A field that refuses ``null`` is never ``None`` when
    given; one that accepts it (``email``, ``description``) is cleared."""
    return {name: getattr(body, name) for name in body.model_fields_set}


class Statements:
    """The statements of one resource's table, built once: its lists (page and count, per
    set of filters given, with or without the archived rows), the read of one row, the row
    locked for a change, the insert, the update of every column a change may write, and the
    archiving. Every one names the organisation."""

    def __init__(self, table: Table, filters: Mapping[str, refs.Filter]) -> None:
        c = table.c
        ours = c.organization_id == bindparam("organization_id")
        one = c.id == bindparam("id")
        self.archivable = "archived_at" in c
        active = [c.archived_at.is_(None)] if self.archivable else []
        self.get = {
            False: Sql(select(table).where(ours, one, *active)),
            True: Sql(select(table).where(ours, one)),
        }
        self.locked = Sql(select(table).where(ours, one, *active).with_for_update())
        # Columns with a Python-side default (``created_at``, ``status``…) are left to the
        # executor, which makes them unless given.
        self.inserted = tuple(col.key for col in c if col.key != "id" and col.default is None)
        self.insert = Sql(
            insert(table).values({k: bindparam(k) for k in self.inserted}).returning(*c)
        )
        # Every column a change may write, in one statement whatever changed; ``onupdate``
        # columns (``updated_at``) too, made by the executor unless given.
        self.written = tuple(col.key for col in c if col.key not in _FIXED and col.onupdate is None)
        self.update = Sql(
            update(table)
            .where(ours, one)
            .values({k: bindparam(k) for k in self.written})
            .returning(*c)
        )
        self.archive = (
            Sql(
                update(table)
                .where(ours, one, *active)
                .values(archived_at=bindparam("now"))
                .returning(*c)
            )
            if self.archivable
            else None
        )
        # Every shape of the list, now: a few filters make a few statements.
        self.lists: dict[tuple[bool, tuple[str, ...]], refs.Listing] = {}
        for include_archived in (False, True) if self.archivable else (False,):
            for n in range(len(filters) + 1):
                for names in itertools.combinations(filters, n):
                    stmt = select(table).where(ours)
                    if not include_archived:
                        stmt = stmt.where(*active)
                    for name in names:
                        stmt = stmt.where(filters[name].condition(name))
                    listing = refs.Listing(stmt.order_by(c.id))
                    self.lists[(include_archived, names)] = listing


@dataclass(frozen=True, kw_only=True)
class Resource(Generic[ReadT, CreateT, UpdateT]):
    """One kind of reference row of an organisation, and its use cases.

    ``insert`` checks what a create body names and gives the new row's columns (by default,
    ``new_row``), or a row it wrote itself (``add``, a revived row). ``change`` checks an
    update body against the locked row and gives the columns that change (by default,
    ``given_fields``); it may write other tables. ``reads`` turns rows into their wire form
    in a fixed number of statements, when ``read.model_validate`` is not enough. ``cascade``
    archives, with a row, what must not stay referenceable without it. ``unique`` says what
    a unique constraint refusing a write means (a 409: another request won the same values
    meanwhile). ``filters`` are the list's, by the name of their keyword argument (and bind
    parameter), in the order they apply.
    """

    model: Any
    label: str
    read: type[ReadT]
    filters: Mapping[str, refs.Filter] = field(default_factory=dict)
    insert: Callable[[Executor, Caller, CreateT], Awaitable[Any]] | None = None
    change: Callable[[Executor, Caller, Any, UpdateT], Awaitable[Mapping[str, Any]]] | None = None
    reads: Callable[[Executor, Sequence[Any]], Awaitable[list[ReadT]]] | None = None
    cascade: Callable[[Executor, Any, dt.datetime], Awaitable[None]] | None = None
    unique: Callable[[Mapping[str, Any]], str] | None = None
    # The journal's subject for this resource's rows: every create and change is an entry.
    journal: str | None = None
    sql: Statements = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", Statements(table_of(self.model), self.filters))

    async def _read(self, db: Executor, rows: Sequence[Any]) -> list[ReadT]:
        if self.reads is not None:
            return await self.reads(db, rows)
        return [self.read.model_validate(row) for row in rows]

    async def _write(self, db: Executor, sql: Sql, params: Mapping[str, Any]) -> Any:
        try:
            return await db.first(sql, **params)
        except IntegrityError as exc:
            if self.unique is None:
                raise
            raise Conflict(self.unique(params)) from exc

    async def add(self, db: Executor, values: Mapping[str, Any]) -> Any:
        """Insert a row of ``values`` (columns not given: their default, else ``NULL``);
        the row as written."""
        return await self._write(
            db, self.sql.insert, {**dict.fromkeys(self.sql.inserted), **values}
        )

    async def list_page(
        self,
        db: Executor,
        caller: Caller,
        page: Page,
        *,
        include_archived: bool = False,
        **filters: Any,
    ) -> tuple[list[ReadT], int]:
        """One page of the organisation's rows, by id, with the filters given (not ``None``)."""
        given = tuple(name for name in self.filters if filters.get(name) is not None)
        listing = self.sql.lists[(include_archived and self.sql.archivable, given)]
        params = {name: self.filters[name].value(filters[name]) for name in given}
        rows, total = await refs.page_of(
            db,
            listing,
            page=page.page,
            page_size=page.size,
            organization_id=caller.organization_id,
            **params,
        )
        return await self._read(db, rows), total

    async def get(
        self, db: Executor, caller: Caller, row_id: int, *, include_archived: bool = False
    ) -> ReadT:
        row = await db.first(
            self.sql.get[include_archived], organization_id=caller.organization_id, id=row_id
        )
        if row is None:
            raise NotFound(f"No {self.label} {row_id}.")
        return (await self._read(db, [row]))[0]

    def _record(self, db: Executor, caller: Caller, action: str, row: Any, changes: Any) -> None:
        if self.journal is not None:
            entry = Entry(action, self.journal, row.id, journal.payload(changes), caller.actor)
            journal.record(db, caller.organization_id, entry)

    async def create(self, db: Executor, caller: Caller, body: CreateT) -> ReadT:
        made = new_row(caller, body) if self.insert is None else await self.insert(db, caller, body)
        row = await self.add(db, made) if isinstance(made, Mapping) else made
        written = {k: getattr(row, k) for k in self.sql.written if k not in _UNRECORDED}
        self._record(db, caller, "create", row, written)
        return (await self._read(db, [row]))[0]

    async def update(self, db: Executor, caller: Caller, row_id: int, body: UpdateT) -> ReadT:
        row = await db.first(self.sql.locked, organization_id=caller.organization_id, id=row_id)
        if row is None:
            raise NotFound(f"No {self.label} {row_id}.")
        if self.change is None:
            given: Mapping[str, Any] = given_fields(body)
        else:
            given = await self.change(db, caller, row, body)
        changes = {k: v for k, v in given.items() if getattr(row, k) != v}
        if changes:
            # The row's own values for what does not change, but for the columns the
            # executor refreshes (``updated_at``) when not given.
            current = {k: getattr(row, k) for k in self.sql.written}
            params = {**current, **changes, "organization_id": row.organization_id, "id": row.id}
            before = row
            row = await self._write(db, self.sql.update, params)
            recorded = {
                k: (getattr(before, k), v) for k, v in changes.items() if k not in _UNRECORDED
            }
            self._record(db, caller, "update", row, recorded)
        return (await self._read(db, [row]))[0]

    async def archive(self, db: Executor, caller: Caller, row_id: int) -> None:
        """Archived rows are missing from lists, reads and references; they stay in the
        tables (interventions keep naming them)."""
        assert self.sql.archive is not None, f"{self.label} rows are not archived"
        now = utcnow()
        row = await db.first(
            self.sql.archive, organization_id=caller.organization_id, id=row_id, now=now
        )
        if row is None:
            raise NotFound(f"No {self.label} {row_id}.")
        self._record(db, caller, "archive", row, {"archivedAt": now})
        if self.cascade is not None:
            await self.cascade(db, row, now)
