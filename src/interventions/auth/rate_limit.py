"""Sliding-window counters kept in the database, so that every worker process shares them.

A limited action is *charged* before it is done: in a write transaction that serialises on
the key, the hits in the window are counted and, under the limit, one more is recorded. So a
burst of N concurrent attempts does the work at most ``limit`` times, whatever the number of
processes; the others are refused (429) without doing it. A success that should not count
refunds its hit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import String, bindparam, delete, func, insert, select, text

from interventions.auth.models import RateLimitHit
from interventions.db import Executor, Sql, any_of, table_of, utcnow
from interventions.errors import TooManyRequests


@dataclass(frozen=True)
class Limit:
    """At most ``max_hits`` under ``key`` in ``window_seconds``; ``what`` names the hits in
    the 429's detail ("failed logins")."""

    key: str
    max_hits: int
    window_seconds: int
    what: str


_HITS = table_of(RateLimitHit)

# A transaction-scoped advisory lock on the key's 64-bit hash. Two keys that share a hash
# only wait for each other; the lock ends with the transaction.
_PG_LOCK = Sql(
    text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))").bindparams(
        bindparam("key", type_=String())
    )
)
_COUNT = Sql(
    select(func.count().label("hits"), func.min(_HITS.c.created_at).label("oldest")).where(
        _HITS.c.key == bindparam("key"), _HITS.c.created_at > bindparam("since")
    )
)
# Hits that left the window are forgotten when the key is charged: the table holds live ones.
_FORGET = Sql(
    delete(_HITS).where(_HITS.c.key == bindparam("key"), _HITS.c.created_at <= bindparam("since"))
)
_RECORD = Sql(
    insert(_HITS)
    .values(key=bindparam("key"), created_at=bindparam("created_at"))
    .returning(_HITS.c.id)
)
_REFUND = Sql(delete(_HITS).where(any_of(_HITS.c.id, "ids")))
_CLEAR = Sql(delete(_HITS).where(_HITS.c.key == bindparam("key")))


async def _serialise(db: Executor, key: str) -> None:
    """Until the transaction ends, other transactions charging ``key`` wait.

    On SQLite a write transaction (``BEGIN IMMEDIATE``) already holds the database's write
    lock, which serialises every writer: callers must charge in one.
    """
    if db.postgresql:
        await db.execute(_PG_LOCK, key=key)


async def charge(db: Executor, limits: Sequence[Limit]) -> list[int]:
    """Record one hit under every limit's key, or refuse them all with 429 (Retry-After) if
    any is at its limit. Returns the recorded hits' ids, for :func:`refund`.

    Run in a write transaction; the charge is visible to the next attempt once it commits,
    and until then the next attempt on the same key waits (see :func:`_serialise`).
    """
    # Always in the same order, so that two requests charging overlapping keys cannot
    # deadlock on their locks.
    for limit in sorted(limits, key=lambda limit: limit.key):
        await _serialise(db, limit.key)
    for limit in limits:
        count, oldest = await hits(db, limit.key, limit.window_seconds)
        if count >= limit.max_hits:
            wait = retry_after(oldest, limit.window_seconds)
            raise TooManyRequests(
                f"Too many {limit.what}; try again in {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )
    ids: list[int] = []
    now = utcnow()
    for limit in limits:
        since = now - dt.timedelta(seconds=limit.window_seconds)
        await db.execute(_FORGET, key=limit.key, since=since)
        ids.append(int(await db.scalar(_RECORD, key=limit.key, created_at=now)))
    return ids


async def refund(db: Executor, ids: Sequence[int]) -> None:
    """Take back hits :func:`charge` recorded: the attempt turned out not to count."""
    if ids:
        await db.execute(_REFUND, ids=list(ids))


async def hits(db: Executor, key: str, window_seconds: int) -> tuple[int, dt.datetime | None]:
    """How many hits ``key`` has in the window, and when the oldest of them was."""
    since = utcnow() - dt.timedelta(seconds=window_seconds)
    row = await db.first(_COUNT, key=key, since=since)
    return int(row.hits), row.oldest


async def clear(db: Executor, key: str) -> None:
    """Forget every hit under ``key`` (a success that resets the count)."""
    await db.execute(_CLEAR, key=key)


def retry_after(oldest: dt.datetime | None, window_seconds: int) -> int:
    if oldest is None:
        return window_seconds
    remaining = (oldest + dt.timedelta(seconds=window_seconds) - utcnow()).total_seconds()
    return max(1, int(remaining) + 1)
