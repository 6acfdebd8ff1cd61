"""Engine, metadata naming convention, column types shared by both databases, the executor
that runs compiled statements on the driver, and the request's database."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import sys
import time
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Request
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    Table,
    TableClause,
    Text,
    bindparam,
    column,
    event,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator

from interventions import drivers
from interventions.config import Settings
from interventions.drivers import Lease, Watchdog, as_sqlalchemy_error

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Every id column: 64-bit on PostgreSQL; INTEGER on SQLite, whose rowid aliasing needs it.
ID = BigInteger().with_variant(Integer(), "sqlite")


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, for statements that need none of the ORM's work."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """The value, if it is not a naive datetime (which a UTC column refuses)."""
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on PostgreSQL and SQLite alike.

    SQLite has no time zone type: values are stored naive in UTC and come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        # SQLite's (PostgreSQL's is ``bind_processor``'s): naive, in UTC.
        aware = _aware(value)
        return None if aware is None else aware.astimezone(dt.UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> Any:
        # asyncpg sends an aware datetime as the instant it is, whatever its zone: only the
        # check is needed, not ``astimezone`` (13 columns of an intervention).
        return _aware if dialect.name == "postgresql" else super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # asyncpg already gives timestamptz values aware and in UTC: nothing to do per value.
        if dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        parsed: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def async_url(url: str) -> str:
    """Accept the operator's plain URLs and pick the async driver for each database."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return str(parsed.set(drivername="postgresql+asyncpg").render_as_string(False))
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite").render_as_string(False))
    raise ValueError(f"unsupported database URL {url!r}: use postgresql:// or sqlite://")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@dataclass
class Database:
    """The engine, and where statements run: ``transaction()`` (an executor of its own) and,
    per request, ``RequestDatabase``.

    ``reader`` and ``writer`` are ORM session factories over the same engine for the test
    suite's factories and inspections only; the service never opens a session. As for the
    executor, a writer's transaction starts with ``BEGIN IMMEDIATE`` on SQLite and a reader
    runs in autocommit on PostgreSQL (nothing written through it would be atomic).
    """

    engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]
    sqlite: bool
    watchdog: Watchdog | None = None  # PostgreSQL with a command timeout

    async def dispose(self) -> None:
        if self.watchdog is not None:
            self.watchdog.close()
        await self.engine.dispose()

    def connections_in_use(self) -> int:
        return drivers.in_use(self.engine)

    async def executor(self, *, write: bool) -> tuple[Executor, Lease]:
        """An executor on a connection of its own, its transaction begun (see
        ``Executor.start``); the lease, to give the connection back when done."""
        lease = await drivers.lease(self.engine)
        executor = Executor(self.engine.dialect, lease.driver, lease.adapter)
        if self.watchdog is not None:
            lease.released = self.watchdog.watch(executor)
        try:
            await executor.start(write=write)
        except BaseException:
            await lease.give_back(discard=True)
            raise
        return executor, lease

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Executor]:
        """An executor on a pooled driver connection of its own, in one transaction (see
        ``Executor.start``), committed when the block ends and rolled back if it raises: for
        what runs outside requests (the outbox relay, the planner, the CLI)."""
        executor, lease = await self.executor(write=write)
        try:
            try:
                yield executor
            except BaseException:
                with contextlib.suppress(Exception):  # the error that ended the block wins
                    await executor.end(commit=False)
                raise
            await executor.end(commit=True)
        finally:
            await lease.give_back(discard=executor.lost)


def create_database(
    url: str,
    *,
    echo: bool = False,
    pool: bool = True,
    pool_size: int = 20,
    max_overflow: int = 0,
    pool_timeout: float = 30,
    connect_timeout: float | None = None,
    command_timeout: float | None = None,
    busy_timeout: float = 30,
) -> Database:
    """``connect_timeout`` and ``command_timeout`` (one statement, lock waits included) bound
    PostgreSQL, ``None`` leaving asyncpg's own (60 s to connect, no statement limit). The
    command timeout is the server's ``statement_timeout`` on each connection, and a
    ``Watchdog`` ends a connection whose server stopped answering altogether;
    ``pool_timeout`` is the wait for a pooled PostgreSQL connection; ``busy_timeout`` is how
    long an SQLite statement waits for another writer's lock."""
    full = async_url(url)
    sqlite = is_sqlite(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if sqlite:
        kwargs["connect_args"] = {"timeout": busy_timeout}
    else:
        connect_args: dict[str, Any] = {}
        if connect_timeout is not None:
            connect_args["timeout"] = connect_timeout
        if command_timeout is not None:
            # In milliseconds, at least 1 (0 would turn it off).
            limit = str(max(1, round(command_timeout * 1000)))
            connect_args["server_settings"] = {"statement_timeout": limit}
        kwargs["connect_args"] = connect_args
        if pool:
            # Connections beyond pool_size are closed as soon as they are returned: a pool
            # smaller than the usual concurrency reconnects (TLS handshake included) all the
            # time.
            kwargs.update(
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                pool_pre_ping=False,
                # Nothing to reset when a connection comes back: the executor ends its
                # transactions itself (drivers.Lease discards one it could not end), and the
                # test suite's ORM sessions commit or roll back theirs.
                pool_reset_on_return=None,
            )
        else:
            kwargs["poolclass"] = NullPool
    engine = create_async_engine(full, **kwargs)

    if sqlite:
        _configure_sqlite(engine, busy_timeout)
        read_engine = engine
        write_engine = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    else:
        # Under READ COMMITTED every statement takes its own snapshot, inside a transaction
        # or not: for reads, BEGIN and COMMIT would only add two round trips.
        read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        write_engine = engine
    reader = async_sessionmaker(read_engine, expire_on_commit=False, autoflush=False)
    writer = async_sessionmaker(write_engine, expire_on_commit=False, autoflush=False)
    watchdog = Watchdog(command_timeout) if command_timeout is not None and not sqlite else None
    return Database(engine=engine, reader=reader, writer=writer, sqlite=sqlite, watchdog=watchdog)


def create_database_from_settings(settings: Settings, *, pool: bool = True) -> Database:
    """``create_database`` with the pool and the timeouts the operator configured."""
    return create_database(
        settings.database_url,
        echo=settings.log_sql,
        pool=pool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
        busy_timeout=settings.db_busy_timeout_seconds,
    )


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


# --- The executor: statements compiled once per dialect, run by the driver ------------------
#
# SQLAlchemy's execution path costs ~110–160 µs of CPU per statement over the driver
# (bench/results/budget-small.md). A ``Sql`` is built once with Core (or as text), compiled
# once per dialect into the driver's SQL, its parameter order and the type conversions of its
# binds and columns (SQLAlchemy's own processors, so values convert exactly as through the
# ORM); ``Executor`` runs it on the driver connection of the request's transaction: asyncpg's
# prepared statements on PostgreSQL, aiosqlite on the embedded default.


class AnyOf(ColumnElement[bool]):
    """``column`` among the ids of the list parameter ``name``, as one constant SQL text:
    ``= ANY($n)`` on PostgreSQL, ``IN (SELECT value FROM json_each(?))`` on SQLite (an
    expanding ``IN`` would render a new text, hence a new prepared statement, per length)."""

    inherit_cache = True
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.parameter = bindparam(name, type_=_IdList())


class _IdList(TypeDecorator[list[int]]):
    """A list of ids as a parameter: an array on PostgreSQL, JSON text on SQLite."""

    impl = JSON()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger()))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return json.dumps(list(value))  # SQLite; PostgreSQL's is ``bind_processor``'s

    def bind_processor(self, dialect: Dialect) -> Any:
        # asyncpg encodes a list of ints as bigint[] itself: ``list`` alone, not the ARRAY
        # type's item-by-item pass on top of ``process_bind_param`` (~1 % of a curative).
        if dialect.name == "postgresql":
            return list
        return super().bind_processor(dialect)


class TextList(TypeDecorator[list[str]]):
    """A list of texts as a PostgreSQL ``text[]`` parameter (the journal's one-statement
    append), bound as it comes: asyncpg encodes a list of strings itself, and the ARRAY
    type's item-by-item pass over every entry of eight lists did nothing else."""

    impl = ARRAY(Text())
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return None


@compiles(AnyOf, "postgresql")
def _any_of_postgresql(element: AnyOf, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY({compiler.process(element.parameter, **kw)})"


@compiles(AnyOf)
def _any_of_default(element: AnyOf, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    parameter = compiler.process(element.parameter, **kw)
    return f"{column} IN (SELECT value FROM json_each({parameter}))"  # noqa: S608 (compiled SQL)


def any_of(column: Any, name: str) -> AnyOf:
    """A constant-text ``column IN (ids)`` for a list parameter ``name`` (see ``AnyOf``)."""
    return AnyOf(column, name)


class IdRows(TableClause):
    """The ids of the list parameter ``name`` as rows of one column, ``value``, to select
    from (``INSERT … SELECT``: one statement however many rows): ``unnest($n)`` on
    PostgreSQL, ``json_each(?)`` on SQLite, under the name ``ids``."""

    __visit_name__ = "id_rows"
    inherit_cache = False

    def __init__(self, name: str) -> None:
        super().__init__("ids", column("value", BigInteger()))
        self.parameter = bindparam(name, type_=_IdList())


@compiles(IdRows, "postgresql")
def _id_rows_postgresql(element: IdRows, compiler: Any, **kw: Any) -> str:
    kw.pop("asfrom", None)
    return f"unnest({compiler.process(element.parameter, **kw)}) AS ids(value)"


@compiles(IdRows)
def _id_rows_default(element: IdRows, compiler: Any, **kw: Any) -> str:
    kw.pop("asfrom", None)
    return f"json_each({compiler.process(element.parameter, **kw)}) AS ids"


def id_rows(name: str) -> IdRows:
    """Rows ``ids.value`` of the list parameter ``name`` (see ``IdRows``)."""
    return IdRows(name)


Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Compiled:
    """One statement in one dialect: the driver's SQL, what to bind, how to read the rows."""

    sql: str
    names: tuple[str, ...]  # bind names in the order of the placeholders
    defaults: dict[str, Any]  # values the statement carries itself (literals)
    binds: tuple[Processor | None, ...]
    record: Any  # a namedtuple class of the result columns, or None
    columns: tuple[Processor | None, ...]
    # Columns' Python-side ``default``/``onupdate`` (``utcnow``…), made when not given, as
    # SQLAlchemy's execution context would.
    generated: dict[str, Callable[[], Any]] = field(default_factory=dict)

    @functools.cached_property
    def converts(self) -> bool:
        """Whether any column has a processor (none on PostgreSQL: rows go as they come)."""
        return any(p is not None for p in self.columns)

    @functools.cached_property
    def arguments(self) -> Callable[[dict[str, Any]], list[Any]]:
        """The driver's arguments from the caller's parameters, in placeholder order: the
        given value, else the column's generated value (``utcnow``…), else the literal the
        statement carries; through the type's bind processor when it has one and the value
        is not ``None``; a missing parameter is a ``KeyError``.

        One function written for the statement (as ``namedtuple`` and ``dataclasses`` write
        theirs): a list display of one expression per placeholder, ~3× faster than a loop
        over the placeholders testing each (5.4 → 1.8 µs for the intervention's 35-column
        INSERT, the arguments being built for every statement of every request)."""
        env: dict[str, Any] = {}
        items = []
        for i, (name, process) in enumerate(zip(self.names, self.binds, strict=True)):
            key = repr(name)
            if name in self.generated:
                env[f"g{i}"] = self.generated[name]
                value = f"(params[{key}] if {key} in params else g{i}())"
            elif name in self.defaults:
                env[f"d{i}"] = self.defaults[name]
                value = f"params.get({key}, d{i})"
            else:
                value = f"params[{key}]"
            if process is not None:
                env[f"p{i}"] = process
                value = f"(None if (v{i} := {value}) is None else p{i}(v{i}))"
            items.append(value)
        source = f"def arguments(params):\n    return [{', '.join(items)}]\n"
        exec(source, env)  # noqa: S102 - the text is made above of bind names' reprs only
        made: Callable[[dict[str, Any]], list[Any]] = env["arguments"]
        return made

    def rows(self, found: Sequence[Sequence[Any]]) -> list[Any]:
        """The driver's rows as records, converted by the columns' processors if any."""
        make = self.record._make
        if not self.converts:
            return [make(r) for r in found]
        columns = self.columns

        def convert(row: Sequence[Any]) -> Any:
            pairs = zip(columns, row, strict=True)
            return make([p(v) if p is not None and v is not None else v for p, v in pairs])

        return [convert(r) for r in found]


class Sql:
    """A statement built once (module level) and compiled once per dialect.

    Every one is registered, so that a test can check them all (tenant scoping). A statement
    over tenant tables without the organisation predicate must say why (``unscoped``): the
    authentication's session look-up, which is what finds the organisation.
    """

    registry: ClassVar[list[Sql]] = []

    def __init__(self, statement: ClauseElement, *, unscoped: str | None = None) -> None:
        self.statement = statement
        self.unscoped = unscoped
        self.module: str = sys._getframe(1).f_globals.get("__name__", "")
        self._compiled: dict[str, Compiled] = {}
        Sql.registry.append(self)

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return found


_record_type: Any = namedtuple  # field names known at run time only


def _compile(statement: ClauseElement, dialect: Dialect) -> Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    defaults = {}
    binds: list[Processor | None] = []
    for name in names:
        bind = compiled.binds[name]
        if not bind.required:
            defaults[name] = bind.effective_value
        binds.append(bind.type._cached_bind_processor(dialect))
    generated: dict[str, Callable[[], Any]] = {}
    for attribute, key in (("insert_prefetch", "default"), ("update_prefetch", "onupdate")):
        for prefetched in getattr(compiled, attribute, None) or ():
            made = _generator(getattr(prefetched, key))
            if made is not None and prefetched.key in names:
                generated[prefetched.key] = made
    record: Any = None
    columns: list[Processor | None] = []
    if compiled._result_columns:
        labels = [c[0] for c in compiled._result_columns]
        for entry in compiled._result_columns:
            columns.append(entry[3]._cached_result_processor(dialect, None))
        record = _record_type("Record", labels, rename=True)
    return Compiled(
        sql=compiled.string,
        names=names,
        defaults=defaults,
        binds=tuple(binds),
        record=record,
        columns=tuple(columns),
        generated=generated,
    )


def _generator(default: Any) -> Callable[[], Any] | None:
    """What makes a column's Python-side default: its callable (SQLAlchemy wraps every one
    to take an execution context, which none here uses) or its constant."""
    if default is None:
        return None
    if default.is_callable:
        arg = default.arg
        return lambda: arg(None)
    if default.is_scalar:
        value = default.arg
        return lambda: value
    return None


class Executor:
    """Runs ``Sql`` statements on one pooled driver connection (asyncpg on PostgreSQL,
    aiosqlite on SQLite), in the transaction ``start`` began, or in autocommit (a read on
    PostgreSQL). Made by ``RequestDatabase`` for a request and by ``Database.transaction``
    for what runs outside requests."""

    # Called with each statement's SQL before it runs (bench/measure.py counts them); empty in
    # the service, where it costs one test per statement.
    observers: ClassVar[list[Callable[[str], None]]] = []
    # Appends the journal entries a transaction recorded, just before it commits: set by
    # ``register.journal``, the module that records them (so never missing when there are).
    before_commit: ClassVar[Callable[[Executor], Awaitable[None]] | None] = None

    def __init__(self, dialect: Dialect, driver: Any, adapter: Any) -> None:
        self.dialect = dialect
        # organisation → journal entries recorded in this transaction (``register.journal``)
        self.journal: dict[int, list[Any]] = {}
        self.postgresql = dialect.name == "postgresql"
        self._driver = driver
        self._adapter = adapter  # SQLAlchemy's DB-API adapter: its error translation
        self.lost = False  # a statement found the connection lost (see ``_error``)
        self.since = 0.0  # when the statement in flight was sent (``drivers.Watchdog``)
        self.stalled = False  # the watchdog ended the connection: no answer in time

    def stall(self) -> None:
        """The database has not answered the statement in flight in time (``Watchdog``):
        the connection is ended, and the statement raises ``TimeoutError`` (``_error``)."""
        self.stalled = self.lost = True
        self._driver.terminate()

    async def _driver_sql(self, sql: str) -> None:
        """A statement of transaction control, straight to the driver."""
        for observe in self.observers:
            observe(sql)
        self.since = time.monotonic()
        try:
            if self.postgresql:
                await self._driver.execute(sql)
            else:
                await (await self._driver.execute(sql)).close()
        except Exception as error:
            raise self._error(error, Compiled(sql, (), {}, (), None, ()), []) from error
        finally:
            self.since = 0.0

    async def ping(self) -> None:
        """One round trip (the health check)."""
        await self._driver_sql("SELECT 1")

    async def start(self, *, write: bool) -> None:
        """Begin the transaction of the executor's connection:
        ``BEGIN IMMEDIATE`` for a write on SQLite, so that writers queue on the database
        lock instead of failing to upgrade a read lock; a read there still gets one
        snapshot. A read on PostgreSQL needs none (READ COMMITTED, autocommit)."""
        if self.postgresql:
            if write:
                await self._driver_sql("BEGIN")
        else:
            await self._driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    async def end(self, *, commit: bool) -> None:
        """Commit or roll back what ``start`` began (nothing if nothing is open); before a
        commit, the journal entries the transaction recorded are appended (``journal``)."""
        if commit and self.journal:
            try:
                assert Executor.before_commit is not None, "journal entries with no journal"
                await Executor.before_commit(self)
            except BaseException:
                await self.end(commit=False)
                raise
        self.journal = {}
        if drivers.in_transaction(self._driver):
            await self._driver_sql("COMMIT" if commit else "ROLLBACK")

    def _error(self, error: Exception, c: Compiled, args: list[Any]) -> Exception:
        """The driver's error as SQLAlchemy would have raised it (``IntegrityError``…), so
        that the handlers (503 for a database out of reach) and callers see one kind."""
        if self.stalled:
            return TimeoutError(f"no answer from the database in {c.sql[:60]!r}")
        if isinstance(error, DBAPIError):
            return error
        orig: Exception = error
        if self.postgresql:
            try:
                self._adapter._handle_exception(error)  # raises the DB-API translation
            except Exception as translated:
                orig = translated
        wrapped = as_sqlalchemy_error(self.dialect, orig, c.sql, args, self._adapter)
        if not isinstance(wrapped, DBAPIError):
            # Not the database's error but the connection's (an OSError): as raised, for the
            # handlers; the connection, in an unknown state, is not reused.
            if isinstance(error, OSError):
                self.lost = True
            return error
        if wrapped.connection_invalidated:
            self.lost = True  # the connection is gone: whoever gives it back discards it
        return wrapped

    async def _run(self, sql: Sql, params: dict[str, Any], *, rows: bool) -> Any:
        """The statement's rows (``rows``), or how many rows it touched."""
        c = sql.compiled(self.dialect)
        args = c.arguments(params)
        for observe in self.observers:
            observe(c.sql)
        self.since = time.monotonic()
        try:
            if self.postgresql:
                if rows:
                    return c.rows(await self._driver.fetch(c.sql, *args))
                status: str = await self._driver.execute(c.sql, *args)
                tail = status.rsplit(" ", 1)[-1]
                return int(tail) if tail.isdigit() else 0
            cursor = await self._driver.execute(c.sql, args)
            try:
                return c.rows(await cursor.fetchall()) if rows else cursor.rowcount
            finally:
                await cursor.close()
        except Exception as error:
            raise self._error(error, c, args) from error
        finally:
            self.since = 0.0

    async def all(self, sql: Sql, **params: Any) -> list[Any]:
        """Every row, as records of the statement's columns."""
        found: list[Any] = await self._run(sql, params, rows=True)
        return found

    async def first(self, sql: Sql, **params: Any) -> Any:
        """The first row, or ``None``."""
        rows = await self._run(sql, params, rows=True)
        return rows[0] if rows else None

    async def scalar(self, sql: Sql, **params: Any) -> Any:
        rows = await self._run(sql, params, rows=True)
        return rows[0][0] if rows else None

    async def execute(self, sql: Sql, **params: Any) -> int:
        """A statement returning no rows; how many rows it touched."""
        count: int = await self._run(sql, params, rows=False)
        return count

    async def many(self, sql: Sql, rows: Sequence[dict[str, Any]]) -> None:
        """The statement once per parameter set (links, a batch of rows), in one call to the
        driver: asyncpg pipelines them, SQLite runs them in a loop in its thread."""
        if not rows:
            return
        c = sql.compiled(self.dialect)
        batch = [c.arguments(params) for params in rows]
        for observe in self.observers:
            observe(c.sql)
        self.since = time.monotonic()
        try:
            if self.postgresql:
                await self._driver.executemany(c.sql, batch)
            else:
                await (await self._driver.executemany(c.sql, batch)).close()
        except Exception as error:
            raise self._error(error, c, batch) from error
        finally:
            self.since = 0.0


async def app_database(request: Request) -> Database:
    """The application's database itself, for what runs in transactions of its own (login,
    which must not hold SQLite's write lock while it checks a password; uploads)."""
    database: Database = request.app.state.db
    return database


AppDatabase = Annotated[Database, Depends(app_database)]
