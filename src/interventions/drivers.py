"""Where the executor's connections come from: SQLAlchemy's pool, as bare driver connections
(asyncpg on PostgreSQL, aiosqlite on SQLite), and how the driver's errors become
SQLAlchemy's (``errors``: a lost connection or a database out of reach is a 503).

asyncpg's own pool was measured in its place (bench/README.md, log step 21): a read's
checkout and one statement 67–71 µs of CPU against 72–79, a write's 132–141 against 124 —
nothing to gain, and a second pool to size; SQLAlchemy's stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool.base import ResetStyle
from sqlalchemy.util import greenlet_spawn

logger = logging.getLogger(__name__)


def as_sqlalchemy_error(
    dialect: Dialect, error: Exception, statement: str | None, params: Any, connection: Any
) -> BaseException:
    """A driver's error wrapped as SQLAlchemy wraps those of its own statements and
    connections (``IntegrityError``, ``DBAPIError``…), a lost connection flagged with the
    dialect's own test: the handlers then read it as the database out of reach (503)."""
    failed: Any = error
    return DBAPIError.instance(
        statement,
        params,
        error,
        dialect.loaded_dbapi.Error,
        dialect=dialect,
        connection_invalidated=dialect.is_disconnect(failed, connection, None),
    )


def in_transaction(driver: Any) -> bool:
    """Whether a transaction is open on a driver connection (asyncpg's or aiosqlite's)."""
    try:
        if hasattr(driver, "is_in_transaction"):  # asyncpg
            return bool(driver.is_in_transaction())
        return bool(driver.in_transaction)  # aiosqlite
    except Exception:  # a connection already closed: nothing open on it
        return False


@dataclass
class Lease:
    """One pooled driver connection, held by one executor until given back."""

    driver: Any  # asyncpg's or aiosqlite's connection
    adapter: Any  # SQLAlchemy's DB-API adapter around it: its error translation
    _give_back: Callable[[bool], Awaitable[None]]
    released: Callable[[], None] | None = None  # called when given back (``Watchdog``)

    async def give_back(self, *, discard: bool) -> None:
        """Back to the pool, or discarded (``discard``: lost; or a transaction still open,
        which SQLAlchemy's pool would hand out again as it is)."""
        if self.released is not None:
            self.released()
        await self._give_back(discard or in_transaction(self.driver))


class Watched(Protocol):
    """What the watchdog watches: when the statement in flight was sent (0: none), and what
    to do when the database has not answered it in time."""

    since: float

    def stall(self) -> None: ...


class Watchdog:
    """Ends a leased PostgreSQL connection whose statement has had no answer for longer
    than ``limit`` plus a grace: a server that stopped answering after the connection was
    made (a host gone, a network cut, a stuck server).

    The limit itself is enforced by the server (``statement_timeout``, set on each
    connection by ``create_database``): a statement that runs or waits on a lock too long
    is cancelled there, with an error, and its connection stays usable. The grace (one
    second and a tenth of the limit) lets that answer arrive before the watchdog gives up
    on the connection. One sweep every quarter of the limit (at most every second), only
    while connections are leased, replaces asyncpg's ``command_timeout``, which armed and
    disarmed a timer for every statement (5-15 µs of CPU each on this machine: bench/README,
    step 41); a statement now only notes when it was sent.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.deadline = limit + 1.0 + limit / 10
        self.interval = min(1.0, limit / 4)
        self._watched: set[Watched] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, watched: Watched) -> Callable[[], None]:
        """Watch until the returned function is called (when the connection is given back)."""
        self._watched.add(watched)
        loop = asyncio.get_running_loop()
        if self._handle is None or self._loop is not loop:
            self._loop = loop
            self._handle = loop.call_later(self.interval, self._sweep)
        return lambda: self._watched.discard(watched)

    def _sweep(self) -> None:
        self._handle = None
        now = time.monotonic()
        for watched in list(self._watched):
            if watched.since and now - watched.since > self.deadline:
                self._watched.discard(watched)
                try:
                    watched.stall()
                except Exception:  # the others are still watched
                    logger.warning("ending a stalled database connection failed", exc_info=True)
        if self._watched and self._loop is not None and not self._loop.is_closed():
            self._handle = self._loop.call_later(self.interval, self._sweep)

    @property
    def armed(self) -> bool:
        """Whether a sweep is due (only while connections are leased)."""
        return self._handle is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def lease(engine: AsyncEngine) -> Lease:
    """A pooled connection; what connecting raised wrapped as SQLAlchemy wraps it for its own
    connections (a ``DBAPIError`` without a statement), so that the handlers read a database
    out of reach or out of room as a 503."""
    try:
        raw = await engine.raw_connection()
    except DBAPIError:
        raise
    except Exception as error:
        if not isinstance(error, engine.dialect.loaded_dbapi.Error):
            raise
        raise as_sqlalchemy_error(engine.dialect, error, None, None, None) from error
    reset_free = getattr(engine.sync_engine.pool, "_reset_on_return", None) is ResetStyle.reset_none

    async def give_back(discard: bool) -> None:
        if discard:
            await greenlet_spawn(raw.invalidate)
            await greenlet_spawn(raw.close)
        elif reset_free:
            raw.close()  # no reset on return (create_database): no I/O, no greenlet needed
        else:
            await greenlet_spawn(raw.close)

    return Lease(raw.driver_connection, raw.dbapi_connection, give_back)


def in_use(engine: AsyncEngine) -> int:
    """Connections leased now (tests check that every request gave its own back)."""
    return int(engine.pool.checkedout())  # type: ignore[attr-defined]
