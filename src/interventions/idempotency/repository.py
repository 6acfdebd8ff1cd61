"""Every statement over idempotency keys: built once, run by the executor (``db.Sql``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql

from interventions.db import Executor, Sql, table_of
from interventions.idempotency.models import IdempotencyKey

KEYS = table_of(IdempotencyKey)
_K = KEYS.c


def _this_key() -> Any:
    return (
        (_K.organization_id == bindparam("organization_id"))
        & (_K.user_id == bindparam("user_id"))
        & (_K.key == bindparam("key"))
    )


# One statement stores the answer, in the transaction of the change: a new key, or one
# whose time is up (not purged yet) taken over. A live key of the same caller conflicts and
# nothing is written: then no row comes back. (Two transactions never store one key at
# once: the first holds the key's claim until it ends, ``claims``.) On PostgreSQL, a write
# that journals stores its key in the journal's statement instead (``journal.flush``).
# PostgreSQL's construct; SQLite's compiler renders the same upsert.
_insert = postgresql.insert(KEYS).values(
    organization_id=bindparam("organization_id"),
    user_id=bindparam("user_id"),
    key=bindparam("key"),
    fingerprint=bindparam("fingerprint"),
    status=bindparam("status"),
    headers=bindparam("headers"),
    body=bindparam("body"),
    created_at=bindparam("now"),
    expires_at=bindparam("expires_at"),
)
STORE = _insert.on_conflict_do_update(
    index_elements=[_K.organization_id, _K.user_id, _K.key],
    set_={
        "fingerprint": _insert.excluded.fingerprint,
        "status": _insert.excluded.status,
        "headers": _insert.excluded.headers,
        "body": _insert.excluded.body,
        "created_at": _insert.excluded.created_at,
        "expires_at": _insert.excluded.expires_at,
    },
    where=_K.expires_at <= bindparam("now"),
).returning(_K.key)
_STORE = Sql(STORE)
_STORED = Sql(
    select(_K.fingerprint, _K.status, _K.headers, _K.body).where(
        _this_key(), _K.expires_at > bindparam("now")
    )
)
_PURGE = Sql(
    delete(KEYS).where(_K.expires_at <= bindparam("now")),
    unscoped="the purge of expired keys goes over every organisation's",
)


async def store(
    db: Executor,
    *,
    organization_id: int,
    user_id: int,
    key: str,
    fingerprint: str,
    status: int,
    headers: list[list[str]],
    body: bytes,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> bool:
    """Keep the answer under the key; ``False`` if the caller's key is taken (and live)."""
    row = await db.first(
        _STORE,
        organization_id=organization_id,
        user_id=user_id,
        key=key,
        fingerprint=fingerprint,
        status=status,
        headers=headers,
        body=body,
        now=now,
        expires_at=expires_at,
    )
    return row is not None


async def stored(
    db: Executor, *, organization_id: int, user_id: int, key: str, now: dt.datetime
) -> Any | None:
    """The caller's live key: ``fingerprint``, ``status``, ``headers``, ``body``; or ``None``."""
    return await db.first(
        _STORED, organization_id=organization_id, user_id=user_id, key=key, now=now
    )


async def purge(db: Executor, now: dt.datetime) -> int:
    """Delete every expired key; how many."""
    return await db.execute(_PURGE, now=now)
