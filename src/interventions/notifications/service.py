"""Side effects as rows, written in the transaction of the change that causes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import Profile
from interventions.db import UTCDateTime, execute_core, table_of, utcnow
from interventions.errors import Unprocessable
from interventions.notifications.models import Notification, OutboxEmail

INTERVENTION_EXECUTED = "intervention.executed"


def new_notification_id() -> str:
    return "ntf_" + uuid.uuid4().hex


_NOTIFICATIONS = table_of(Notification)
_WRITERS = select(Profile.user_id).where(
    Profile.organization_id == bindparam("organization_id"),
    Profile.role.in_(("admin", "manager")),
    Profile.archived_at.is_(None),
)


async def notify_writers(
    session: AsyncSession,
    *,
    organization_id: int,
    intervention_id: int,
    kind: str,
    message: str,
) -> int:
    """One in-app notification to each admin and manager of the organisation."""
    user_ids = list(
        (await execute_core(session, _WRITERS, {"organization_id": organization_id})).scalars()
    )
    if not user_ids:
        return 0
    now = utcnow()
    await execute_core(
        session,
        insert(_NOTIFICATIONS),
        [
            {
                "id": new_notification_id(),
                "organization_id": organization_id,
                "user_id": user_id,
                "type": kind,
                "intervention_id": intervention_id,
                "message": message,
                "created_at": now,
            }
            for user_id in user_ids
        ],
    )
    return len(user_ids)


_MARK_READ = (
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


async def mark_read(
    session: AsyncSession, *, organization_id: int, user_id: int, notification_id: str, field: str
) -> None:
    """Mark one of the caller's notifications read (one statement); 422 when it is not the
    caller's."""
    result = await execute_core(
        session,
        _MARK_READ,
        {
            "b_id": notification_id,
            "b_organization_id": organization_id,
            "b_user_id": user_id,
            "b_now": utcnow(),
        },
    )
    if result.rowcount != 1:
        raise Unprocessable(
            f"No notification {notification_id!r} for this user.",
            errors=[{"field": field, "message": "Unknown notification."}],
        )


def queue_email(
    session: AsyncSession,
    *,
    organization_id: int,
    intervention_id: int | None,
    recipient: str,
    subject: str,
    body: str,
    kind: str,
) -> OutboxEmail:
    """Write an e-mail to the durable outbox; a relay delivers it after commit."""
    email = OutboxEmail(
        organization_id=organization_id,
        intervention_id=intervention_id,
        recipient=recipient,
        subject=subject,
        body=body,
        kind=kind,
        message_id=f"<{uuid.uuid4().hex}@interventions.local>",
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    session.add(email)
    return email


async def list_for_user(
    session: AsyncSession, *, organization_id: int, user_id: int, page: int, page_size: int
) -> tuple[Sequence[Notification], int]:
    base = select(Notification).where(
        Notification.organization_id == organization_id, Notification.user_id == user_id
    )
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = (
        await session.execute(
            base.order_by(Notification.created_at.desc(), Notification.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    ).scalars()
    return list(rows), int(total)
