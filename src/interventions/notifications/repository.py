"""Statements of the notifications domain run by the executor (``db.Sql``): in-app
notifications and the e-mail outbox, its relay's claims and outcomes included."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update

from interventions.auth.models import Profile
from interventions.db import Executor, Sql, UTCDateTime, any_of, table_of
from interventions.notifications.models import Notification, OutboxEmail

_NOTIFICATIONS = table_of(Notification)
_OUTBOX = table_of(OutboxEmail)
_PROFILES = table_of(Profile)

PENDING = "pending"
SENT = "sent"
FAILED = "failed"

# --- In-app notifications --------------------------------------------------------------------

_WRITERS = Sql(
    select(_PROFILES.c.user_id).where(
        _PROFILES.c.organization_id == bindparam("organization_id"),
        or_(_PROFILES.c.role == "admin", _PROFILES.c.role == "manager"),
        _PROFILES.c.archived_at.is_(None),
    )
)

_INSERT_NOTIFICATION = Sql(
    insert(_NOTIFICATIONS).values(
        id=bindparam("id"),
        organization_id=bindparam("organization_id"),
        user_id=bindparam("user_id"),
        type=bindparam("type"),
        intervention_id=bindparam("intervention_id"),
        message=bindparam("message"),
        created_at=bindparam("created_at"),
    )
)

_MARK_READ = Sql(
    update(_NOTIFICATIONS)
    .where(
        _NOTIFICATIONS.c.id == bindparam("b_id"),
        _NOTIFICATIONS.c.organization_id == bindparam("b_organization_id"),
        _NOTIFICATIONS.c.user_id == bindparam("b_user_id"),
    )
    # Already read: stays read since the first time.
    .values(
        read_at=func.coalesce(_NOTIFICATIONS.c.read_at, bindparam("b_now", type_=UTCDateTime()))
    )
)

_MINE = (
    _NOTIFICATIONS.c.organization_id == bindparam("organization_id"),
    _NOTIFICATIONS.c.user_id == bindparam("user_id"),
)
_COUNT_MINE = Sql(select(func.count()).select_from(_NOTIFICATIONS).where(*_MINE))
_PAGE_MINE = Sql(
    select(_NOTIFICATIONS)
    .where(*_MINE)
    .order_by(_NOTIFICATIONS.c.created_at.desc(), _NOTIFICATIONS.c.id.desc())
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)


async def writer_user_ids(db: Executor, organization_id: int) -> list[int]:
    """The users of the organisation's admins and managers (archived profiles left out)."""
    return [row.user_id for row in await db.all(_WRITERS, organization_id=organization_id)]


async def insert_notifications(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    await db.many(_INSERT_NOTIFICATION, rows)


async def mark_read(
    db: Executor, *, organization_id: int, user_id: int, notification_id: str, now: dt.datetime
) -> int:
    """How many of the user's notifications were marked (0 or 1)."""
    return await db.execute(
        _MARK_READ,
        b_id=notification_id,
        b_organization_id=organization_id,
        b_user_id=user_id,
        b_now=now,
    )


async def count_for_user(db: Executor, *, organization_id: int, user_id: int) -> int:
    return int(await db.scalar(_COUNT_MINE, organization_id=organization_id, user_id=user_id))


async def page_for_user(
    db: Executor, *, organization_id: int, user_id: int, offset: int, limit: int
) -> list[Any]:
    """A page of the user's notifications, newest first (records of every column)."""
    return await db.all(
        _PAGE_MINE, organization_id=organization_id, user_id=user_id, offset=offset, limit=limit
    )


# --- The outbox --------------------------------------------------------------------------------

# ``status``, ``attempts``, ``next_attempt_at`` and ``created_at`` take their columns'
# defaults (pending, 0, now, now).
_INSERT_EMAIL = Sql(
    insert(_OUTBOX)
    .values(
        organization_id=bindparam("organization_id"),
        intervention_id=bindparam("intervention_id"),
        recipient=bindparam("recipient"),
        subject=bindparam("subject"),
        body=bindparam("body"),
        kind=bindparam("kind"),
        message_id=bindparam("message_id"),
    )
    .returning(*_OUTBOX.c)
)


async def insert_email(db: Executor, **values: Any) -> Any:
    """The new outbox row (a record of every column)."""
    return await db.first(_INSERT_EMAIL, **values)


# The relay works through every organisation's outbox: what it claims is what is due, whoever
# wrote it; each outcome then touches the one row it claimed, by id and lease holder.
_RELAY = "the relay delivers every organisation's outbox"

_CLAIMABLE = (
    _OUTBOX.c.status == PENDING,
    _OUTBOX.c.next_attempt_at <= bindparam("now", type_=UTCDateTime()),
    or_(
        _OUTBOX.c.claimed_until.is_(None),
        _OUTBOX.c.claimed_until <= bindparam("now", type_=UTCDateTime()),
    ),
)

# The candidates are locked with SKIP LOCKED on PostgreSQL (a competing relay takes other rows
# instead of waiting); SQLite renders no locking clause, its BEGIN IMMEDIATE serialises claims.
# Two statements, not ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``: in
# one, PostgreSQL may run the sub-select again as the update goes, skip the rows the update
# itself just changed, and so claim far more than ``n`` rows (measured: all 200 of 200 for
# n = 5, tests/notifications/test_relay.py), as the webhook relay found.
_DUE = Sql(
    select(_OUTBOX.c.id)
    .where(*_CLAIMABLE)
    .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
    .limit(bindparam("batch_size"))
    .with_for_update(skip_locked=True),
    unscoped=_RELAY,
)
_CLAIM = Sql(
    update(_OUTBOX)
    .where(any_of(_OUTBOX.c.id, "ids"), *_CLAIMABLE)
    .values(claimed_by=bindparam("relay_id"), claimed_until=bindparam("until"))
    .returning(
        _OUTBOX.c.id,
        _OUTBOX.c.recipient,
        _OUTBOX.c.subject,
        _OUTBOX.c.body,
        _OUTBOX.c.message_id,
        _OUTBOX.c.attempts,
        _OUTBOX.c.created_at,
        _OUTBOX.c.next_attempt_at,
    ),
    unscoped=_RELAY,
)


def _finish(**values: Any) -> Sql:
    """An outcome written, and the lease freed, only while this relay still holds it."""
    return Sql(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("id"), _OUTBOX.c.claimed_by == bindparam("relay_id"))
        .values(claimed_by=None, claimed_until=None, **values),
        unscoped=_RELAY,
    )


_MARK_SENT = _finish(status=SENT, sent_at=bindparam("sent_at"))
_MARK_FAILED = _finish(
    status=FAILED, attempts=bindparam("attempts"), last_error=bindparam("last_error")
)
_RETRY_LATER = _finish(
    attempts=bindparam("attempts"),
    next_attempt_at=bindparam("next_attempt_at"),
    last_error=bindparam("last_error"),
)

_RELEASE = Sql(
    update(_OUTBOX)
    .where(any_of(_OUTBOX.c.id, "ids"), _OUTBOX.c.claimed_by == bindparam("relay_id"))
    .values(claimed_by=None, claimed_until=None),
    unscoped=_RELAY,
)


async def claim_due(
    db: Executor, *, relay_id: str, now: dt.datetime, until: dt.datetime, batch_size: int
) -> list[Any]:
    """Take the lease on up to ``batch_size`` due rows (locked by the first statement until
    the caller's transaction ends); the rows taken, in no given order."""
    due = await db.all(_DUE, now=now, batch_size=batch_size)
    if not due:
        return []
    ids = [row.id for row in due]
    return await db.all(_CLAIM, ids=ids, relay_id=relay_id, now=now, until=until)


async def mark_sent(db: Executor, *, email_id: int, relay_id: str, sent_at: dt.datetime) -> int:
    return await db.execute(_MARK_SENT, id=email_id, relay_id=relay_id, sent_at=sent_at)


async def mark_failed(
    db: Executor, *, email_id: int, relay_id: str, attempts: int, last_error: str
) -> int:
    return await db.execute(
        _MARK_FAILED, id=email_id, relay_id=relay_id, attempts=attempts, last_error=last_error
    )


async def retry_later(
    db: Executor,
    *,
    email_id: int,
    relay_id: str,
    attempts: int,
    next_attempt_at: dt.datetime,
    last_error: str,
) -> int:
    return await db.execute(
        _RETRY_LATER,
        id=email_id,
        relay_id=relay_id,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_error=last_error,
    )


async def release(db: Executor, *, email_ids: Sequence[int], relay_id: str) -> None:
    """Give claimed rows back untouched."""
    await db.execute(_RELEASE, ids=list(email_ids), relay_id=relay_id)
