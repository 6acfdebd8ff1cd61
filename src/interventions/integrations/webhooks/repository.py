"""Statements of the webhooks domain (``db.Sql``): endpoints and the delivery log for their
organisation's admins, and the relay's fan-out, claims and outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, and_, bindparam, func, insert, or_, select, update

from interventions.auth.models import Profile, User
from interventions.auth.roles import Role
from interventions.db import Executor, Sql, UTCDateTime, any_of, table_of
from interventions.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from interventions.register.journal import ENTRIES, HEADS

_ENDPOINTS = table_of(WebhookEndpoint)
_DELIVERIES = table_of(WebhookDelivery)
_PROFILES = table_of(Profile)
_USERS = table_of(User)
E = _ENDPOINTS.c
D = _DELIVERIES.c

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = (PENDING, DELIVERED, FAILED)


def _now(name: str = "now") -> Any:
    return bindparam(name, type_=UTCDateTime())


# --- endpoints, as the organisation's admins manage them ------------------------------------

_MINE = (E.organization_id == bindparam("organization_id"),)

_INSERT_ENDPOINT = Sql(
    insert(_ENDPOINTS)
    .values(
        organization_id=bindparam("organization_id"),
        url=bindparam("url"),
        description=bindparam("description"),
        event_types=bindparam("event_types"),
        secret=bindparam("secret"),
        enabled=bindparam("enabled"),
        journal_cursor=bindparam("journal_cursor"),
        created_by_profile_id=bindparam("created_by_profile_id"),
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*_ENDPOINTS.c)
)
_ENDPOINT = Sql(select(_ENDPOINTS).where(*_MINE, E.id == bindparam("id")))
# The row locked until the change commits (PostgreSQL): the fan-out, which locks it too,
# never reads the event types or the state half changed.
_ENDPOINT_FOR_UPDATE = Sql(
    select(_ENDPOINTS).where(*_MINE, E.id == bindparam("id")).with_for_update()
)
_LISTED = (*_MINE, E.deleted_at.is_(None))
_COUNT_ENDPOINTS = Sql(select(func.count()).select_from(_ENDPOINTS).where(*_LISTED))
_PAGE_ENDPOINTS = Sql(
    select(_ENDPOINTS)
    .where(*_LISTED)
    .order_by(E.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_UPDATE_ENDPOINT = Sql(
    update(_ENDPOINTS)
    .where(E.organization_id == bindparam("b_organization_id"), E.id == bindparam("b_id"))
    .values(
        url=bindparam("url"),
        description=bindparam("description"),
        event_types=bindparam("event_types"),
        enabled=bindparam("enabled"),
        disabled_reason=bindparam("disabled_reason"),
        disabled_at=bindparam("disabled_at"),
        failing_since=bindparam("failing_since"),
        secret=bindparam("secret"),
        deleted_at=bindparam("deleted_at"),
        updated_at=bindparam("updated_at"),
    )
    .returning(*_ENDPOINTS.c)
)


async def insert_endpoint(db: Executor, organization_id: int, **values: Any) -> Any:
    return await db.first(_INSERT_ENDPOINT, organization_id=organization_id, **values)


async def endpoint(
    db: Executor, organization_id: int, endpoint_id: int, *, lock: bool = False
) -> Any:
    """The organisation's endpoint (deleted ones too), or ``None``."""
    sql = _ENDPOINT_FOR_UPDATE if lock else _ENDPOINT
    return await db.first(sql, organization_id=organization_id, id=endpoint_id)


async def endpoints_page(
    db: Executor, organization_id: int, *, offset: int, limit: int
) -> tuple[list[Any], int]:
    total = int(await db.scalar(_COUNT_ENDPOINTS, organization_id=organization_id))
    rows = await db.all(
        _PAGE_ENDPOINTS, organization_id=organization_id, offset=offset, limit=limit
    )
    return rows, total


async def update_endpoint(db: Executor, row: Any, **values: Any) -> Any:
    """Write every changeable column of ``row``, ``values`` replacing some."""
    columns = {
        name: getattr(row, name)
        for name in (
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "secret",
            "deleted_at",
            "updated_at",
        )
    }
    columns.update(values)
    return await db.first(
        _UPDATE_ENDPOINT, b_organization_id=row.organization_id, b_id=row.id, **columns
    )


# --- the delivery log --------------------------------------------------------------------------

_OF_ENDPOINT = (
    D.organization_id == bindparam("organization_id"),
    D.endpoint_id == bindparam("endpoint_id"),
)
_WITH_STATUS = (*_OF_ENDPOINT, D.status == bindparam("status", type_=String()))


def _page(*where: Any) -> tuple[Sql, Sql]:
    count = Sql(select(func.count()).select_from(_DELIVERIES).where(*where))
    page = Sql(
        select(_DELIVERIES)
        .where(*where)
        .order_by(D.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    return count, page


_DELIVERIES_ALL = _page(*_OF_ENDPOINT)
_DELIVERIES_WITH_STATUS = _page(*_WITH_STATUS)
_DELIVERY = Sql(select(_DELIVERIES).where(*_OF_ENDPOINT, D.id == bindparam("id")))
# Not while a relay holds it: the attempt under way would write its outcome over the replay.
_REPLAY = Sql(
    update(_DELIVERIES)
    .where(
        D.organization_id == bindparam("b_organization_id"),
        D.endpoint_id == bindparam("b_endpoint_id"),
        D.id == bindparam("b_id"),
        or_(D.claimed_until.is_(None), D.claimed_until <= _now("b_now")),
    )
    .values(
        status=PENDING,
        attempts=0,
        next_attempt_at=_now("b_now"),
        delivered_at=None,
        claimed_by=None,
        claimed_until=None,
        replays=D.replays + 1,
    )
    .returning(*_DELIVERIES.c)
)


async def deliveries_page(
    db: Executor,
    organization_id: int,
    endpoint_id: int,
    *,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Any], int]:
    """A page of an endpoint's deliveries, newest first, and how many there are."""
    count, page = _DELIVERIES_ALL if status is None else _DELIVERIES_WITH_STATUS
    params: dict[str, Any] = {"organization_id": organization_id, "endpoint_id": endpoint_id}
    if status is not None:
        params["status"] = status
    total = int(await db.scalar(count, **params))
    rows = await db.all(page, offset=offset, limit=limit, **params)
    return rows, total


async def delivery(db: Executor, organization_id: int, endpoint_id: int, delivery_id: int) -> Any:
    return await db.first(
        _DELIVERY, organization_id=organization_id, endpoint_id=endpoint_id, id=delivery_id
    )


async def replay(
    db: Executor, organization_id: int, endpoint_id: int, delivery_id: int, now: dt.datetime
) -> Any:
    """The delivery queued again (a new series of attempts), or ``None`` while it is being
    sent."""
    return await db.first(
        _REPLAY,
        b_organization_id=organization_id,
        b_endpoint_id=endpoint_id,
        b_id=delivery_id,
        b_now=now,
    )


_ADMIN_EMAILS = Sql(
    select(_USERS.c.email)
    .select_from(_PROFILES.join(_USERS, _USERS.c.id == _PROFILES.c.user_id))
    .where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        _PROFILES.c.role == Role.ADMIN.value,
        _PROFILES.c.archived_at.is_(None),
    )
    .order_by(_USERS.c.email)
)


async def admin_emails(db: Executor, organization_id: int) -> list[str]:
    return [row.email for row in await db.all(_ADMIN_EMAILS, organization_id=organization_id)]


# --- the relay: fan-out ------------------------------------------------------------------------

# The relay serves every organisation: it finds the endpoints behind their journal, and the
# due deliveries, whoever they belong to; each outcome then touches the rows it claimed.
_RELAY = "the webhook relay works through every organisation's endpoints and deliveries"

# Enabled endpoints behind their organisation's journal head, locked (SKIP LOCKED: another
# relay fans out other endpoints meanwhile; SQLite's BEGIN IMMEDIATE serialises instead).
_BEHIND = Sql(
    select(E.id, E.organization_id, E.journal_cursor, E.event_types)
    .select_from(_ENDPOINTS.join(HEADS, HEADS.c.organization_id == E.organization_id))
    .where(E.enabled.is_(True), E.deleted_at.is_(None), HEADS.c.seq > E.journal_cursor)
    .order_by(E.id)
    .limit(bindparam("limit"))
    .with_for_update(of=_ENDPOINTS, skip_locked=True),
    unscoped=_RELAY,
)
_ENTRIES_AFTER = Sql(
    select(ENTRIES)
    .where(
        ENTRIES.c.organization_id == bindparam("organization_id"),
        ENTRIES.c.seq > bindparam("after"),
    )
    .order_by(ENTRIES.c.seq)
    .limit(bindparam("limit"))
)
_INSERT_DELIVERY = Sql(
    insert(_DELIVERIES).values(
        organization_id=bindparam("organization_id"),
        endpoint_id=bindparam("endpoint_id"),
        journal_seq=bindparam("journal_seq"),
        event_type=bindparam("event_type"),
        message_id=bindparam("message_id"),
        payload=bindparam("payload"),
        next_attempt_at=bindparam("now"),
        created_at=bindparam("now"),
    )
)
# Conditional on the cursor read: a second fan-out of the same entries cannot commit.
_MOVE_CURSOR = Sql(
    update(_ENDPOINTS)
    .where(
        E.organization_id == bindparam("organization_id"),
        E.id == bindparam("id"),
        E.journal_cursor == bindparam("after"),
    )
    .values(journal_cursor=bindparam("to"))
)


async def endpoints_behind(db: Executor, limit: int) -> list[Any]:
    return await db.all(_BEHIND, limit=limit)


async def entries_after(db: Executor, organization_id: int, after: int, limit: int) -> list[Any]:
    return await db.all(_ENTRIES_AFTER, organization_id=organization_id, after=after, limit=limit)


async def insert_deliveries(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    await db.many(_INSERT_DELIVERY, rows)


async def move_cursor(
    db: Executor, organization_id: int, endpoint_id: int, *, after: int, to: int
) -> int:
    return await db.execute(
        _MOVE_CURSOR, organization_id=organization_id, id=endpoint_id, after=after, to=to
    )


# --- the relay: sending ------------------------------------------------------------------------

_CLAIMABLE = (
    D.status == PENDING,
    D.next_attempt_at <= _now(),
    or_(D.claimed_until.is_(None), D.claimed_until <= _now()),
)
# Two statements, not ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``: in
# one, PostgreSQL may run the sub-select again as the update goes, skip the rows the update
# itself just changed, and so claim far more than ``n`` rows (measured: all 1 000 of 1 000).
_DUE = Sql(
    select(D.id)
    .select_from(
        _DELIVERIES.join(
            _ENDPOINTS, and_(E.id == D.endpoint_id, E.organization_id == D.organization_id)
        )
    )
    .where(*_CLAIMABLE, E.enabled.is_(True), E.deleted_at.is_(None))
    .order_by(D.next_attempt_at, D.id)
    .limit(bindparam("batch_size"))
    .with_for_update(of=_DELIVERIES, skip_locked=True),
    unscoped=_RELAY,
)
_CLAIM = Sql(
    update(_DELIVERIES)
    .where(any_of(D.id, "ids"), *_CLAIMABLE)
    .values(claimed_by=bindparam("relay_id"), claimed_until=bindparam("until"))
    .returning(
        D.id,
        D.organization_id,
        D.endpoint_id,
        D.message_id,
        D.payload,
        D.attempts,
        D.next_attempt_at,
    ),
    unscoped=_RELAY,
)
_ENDPOINTS_BY_ID = Sql(
    select(E.id, E.organization_id, E.url, E.secret).where(any_of(E.id, "ids")),
    unscoped=_RELAY,
)


def _finish(**values: Any) -> Sql:
    """An outcome written, and the lease freed, only while this relay still holds it."""
    return Sql(
        update(_DELIVERIES)
        .where(D.id == bindparam("id"), D.claimed_by == bindparam("relay_id"))
        .values(claimed_by=None, claimed_until=None, **values),
        unscoped=_RELAY,
    )


_ATTEMPTED: dict[str, Any] = {
    "attempts": bindparam("attempts"),
    "last_attempt_at": bindparam("attempted_at"),
    "last_status_code": bindparam("status_code"),
    "last_error": bindparam("error"),
}
_DELIVERED = _finish(status=DELIVERED, delivered_at=bindparam("attempted_at"), **_ATTEMPTED)
_FAILED = _finish(status=FAILED, **_ATTEMPTED)
_RETRY = _finish(next_attempt_at=bindparam("next_attempt_at"), **_ATTEMPTED)
OUTCOMES = {DELIVERED: _DELIVERED, FAILED: _FAILED, PENDING: _RETRY}
_RELEASE = Sql(
    update(_DELIVERIES)
    .where(any_of(D.id, "ids"), D.claimed_by == bindparam("relay_id"))
    .values(claimed_by=None, claimed_until=None),
    unscoped=_RELAY,
)
_SUCCEEDED = Sql(
    update(_ENDPOINTS)
    .where(any_of(E.id, "ids"), E.failing_since.is_not(None))
    .values(failing_since=None),
    unscoped=_RELAY,
)
_FAILING = Sql(
    update(_ENDPOINTS)
    .where(any_of(E.id, "ids"), E.failing_since.is_(None))
    .values(failing_since=_now()),
    unscoped=_RELAY,
)
# Disabled once: whoever's update matches e-mails the admins, in the same transaction.
_DISABLE_IF_FAILING = Sql(
    update(_ENDPOINTS)
    .where(
        any_of(E.id, "ids"),
        E.enabled.is_(True),
        E.failing_since <= bindparam("since", type_=UTCDateTime()),
    )
    .values(enabled=False, disabled_at=_now(), disabled_reason=bindparam("reason"))
    .returning(E.id, E.organization_id, E.url, E.failing_since),
    unscoped=_RELAY,
)
_DISABLE = Sql(
    update(_ENDPOINTS)
    .where(E.id == bindparam("id"), E.enabled.is_(True))
    .values(enabled=False, disabled_at=_now(), disabled_reason=bindparam("reason"))
    .returning(E.id, E.organization_id, E.url, E.failing_since),
    unscoped=_RELAY,
)


async def claim_due(
    db: Executor, *, relay_id: str, now: dt.datetime, until: dt.datetime, batch_size: int
) -> list[Any]:
    """Lease up to ``batch_size`` due deliveries (locked, ``SKIP LOCKED``, on PostgreSQL;
    under SQLite's write lock), in the caller's transaction; the rows claimed."""
    due = await db.all(_DUE, now=now, batch_size=batch_size)
    if not due:
        return []
    ids = [row.id for row in due]
    return await db.all(_CLAIM, ids=ids, relay_id=relay_id, now=now, until=until)


async def endpoints_by_id(db: Executor, ids: Sequence[int]) -> list[Any]:
    return await db.all(_ENDPOINTS_BY_ID, ids=list(ids))


async def record_outcomes(db: Executor, status: str, rows: Sequence[dict[str, Any]]) -> None:
    """Each row: ``id``, ``relay_id``, ``attempts``, ``attempted_at``, ``status_code``,
    ``error`` (and ``next_attempt_at`` for a retry)."""
    await db.many(OUTCOMES[status], rows)


async def release(db: Executor, delivery_ids: Sequence[int], relay_id: str) -> None:
    await db.execute(_RELEASE, ids=list(delivery_ids), relay_id=relay_id)


async def endpoints_succeeded(db: Executor, ids: Sequence[int]) -> None:
    await db.execute(_SUCCEEDED, ids=list(ids))


async def endpoints_failing(db: Executor, ids: Sequence[int], now: dt.datetime) -> None:
    await db.execute(_FAILING, ids=list(ids), now=now)


async def disable_failing(
    db: Executor, ids: Sequence[int], *, since: dt.datetime, now: dt.datetime, reason: str
) -> list[Any]:
    return await db.all(_DISABLE_IF_FAILING, ids=list(ids), since=since, now=now, reason=reason)


async def disable(db: Executor, endpoint_id: int, *, now: dt.datetime, reason: str) -> Any:
    return await db.first(_DISABLE, id=endpoint_id, now=now, reason=reason)
