"""Where the executor's connections come from: SQLAlchemy's pool, as bare driver connections
(asyncpg on PostgreSQL, aiosqlite on SQLite), and how the driver's errors become
SQLAlchemy's (``errors``: a lost connection or a database out of reach is a 503).

asyncpg's own pool was measured in its place (bench/README.md, log step 21): a read's
checkout and one statement 67–71 µs of CPU against 72–79, a write's 132–141 against 124 —
nothing to gain, and a second pool to size; SQLAlchemy's stays.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool.base import ResetStyle
from sqlalchemy.util import greenlet_spawn


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

    async def give_back(self, *, discard: bool) -> None:
        """Back to the pool, or discarded (``discard``: lost; or a transaction still open,
        which SQLAlchemy's pool would hand out again as it is)."""
        await self._give_back(discard or in_transaction(self.driver))


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
