"""A sliding-window counter kept in the database, so that every worker process shares it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import RateLimitHit
from interventions.db import utcnow


async def hits(
    session: AsyncSession, key: str, window_seconds: int
) -> tuple[int, dt.datetime | None]:
    """How many hits ``key`` has in the window, and when the oldest of them was."""
    since = utcnow() - dt.timedelta(seconds=window_seconds)
    row = (
        await session.execute(
            select(func.count(), func.min(RateLimitHit.created_at)).where(
                RateLimitHit.key == key, RateLimitHit.created_at > since
            )
        )
    ).one()
    return int(row[0]), row[1]


async def record(session: AsyncSession, key: str, window_seconds: int) -> None:
    """Count one hit, and forget this key's hits that left the window."""
    since = utcnow() - dt.timedelta(seconds=window_seconds)
    await session.execute(
        delete(RateLimitHit).where(RateLimitHit.key == key, RateLimitHit.created_at <= since)
    )
    session.add(RateLimitHit(key=key))


async def clear(session: AsyncSession, key: str) -> None:
    await session.execute(delete(RateLimitHit).where(RateLimitHit.key == key))


def retry_after(oldest: dt.datetime | None, window_seconds: int) -> int:
    if oldest is None:
        return window_seconds
    remaining = (oldest + dt.timedelta(seconds=window_seconds) - utcnow()).total_seconds()
    return max(1, int(remaining) + 1)
