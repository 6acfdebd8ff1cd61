"""Side effects as rows, written in the transaction of the change that causes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import Profile
from interventions.db import utcnow
from interventions.errors import Unprocessable
from interventions.notifications.models import Notification, OutboxEmail

INTERVENTION_EXECUTED = "intervention.executed"


def new_notification_id() -> str:
    return "ntf_" + uuid.uuid4().hex


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
        (
            await session.execute(
                select(Profile.user_id).where(
                    Profile.organization_id == organization_id,
                    Profile.role.in_(("admin", "manager")),
                    Profile.archived_at.is_(None),
                )
            )
        ).scalars()
    )
    if not user_ids:
        return 0
    now = utcnow()
    await session.execute(
        insert(Notification),
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


async def mark_read(
    session: AsyncSession, *, organization_id: int, user_id: int, notification_id: str, field: str
) -> None:
    """Mark one of the caller's notifications read; 422 when it is not the caller's."""
    found = (
        await session.execute(
            select(Notification.id).where(
                Notification.id == notification_id,
                Notification.organization_id == organization_id,
                Notification.user_id == user_id,
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise Unprocessable(
            f"No notification {notification_id!r} for this user.",
            errors=[{"field": field, "message": "Unknown notification."}],
        )
    await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
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
