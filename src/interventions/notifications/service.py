"""Side effects as rows, written in the transaction of the change that causes them."""

from __future__ import annotations

import uuid
from typing import Any

from interventions.db import Executor, utcnow
from interventions.errors import Unprocessable
from interventions.notifications import repository as repo

INTERVENTION_EXECUTED = "intervention.executed"


def new_notification_id() -> str:
    return "ntf_" + uuid.uuid4().hex


def new_message_id() -> str:
    """Fixed when the e-mail is written: every delivery attempt carries the same one."""
    return f"<{uuid.uuid4().hex}@interventions.local>"


async def notify_writers(
    db: Executor,
    *,
    organization_id: int,
    intervention_id: int,
    kind: str,
    message: str,
) -> int:
    """One in-app notification to each admin and manager of the organisation."""
    user_ids = await repo.writer_user_ids(db, organization_id)
    if not user_ids:
        return 0
    now = utcnow()
    await repo.insert_notifications(
        db,
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
    db: Executor,
    *,
    organization_id: int,
    user_id: int,
    notification_id: str,
    field: str,
) -> None:
    """Mark one of the caller's notifications read (one statement); 422 when it is not the
    caller's."""
    marked = await repo.mark_read(
        db,
        organization_id=organization_id,
        user_id=user_id,
        notification_id=notification_id,
        now=utcnow(),
    )
    if marked != 1:
        raise Unprocessable(
            f"No notification {notification_id!r} for this user.",
            errors=[{"field": field, "message": "Unknown notification."}],
        )


async def enqueue_email(
    db: Executor,
    *,
    organization_id: int,
    intervention_id: int | None,
    recipient: str,
    subject: str,
    body: str,
    kind: str,
) -> Any:
    """Write an e-mail to the durable outbox; a relay delivers it after commit. The row (a
    record with the columns of ``OutboxEmail``)."""
    return await repo.insert_email(
        db,
        organization_id=organization_id,
        intervention_id=intervention_id,
        recipient=recipient,
        subject=subject,
        body=body,
        kind=kind,
        message_id=new_message_id(),
    )


async def list_for_user(
    db: Executor, *, organization_id: int, user_id: int, page: int, page_size: int
) -> tuple[list[Any], int]:
    """A page of the user's notifications, newest first (records), and how many they have."""
    total = await repo.count_for_user(db, organization_id=organization_id, user_id=user_id)
    rows = await repo.page_for_user(
        db,
        organization_id=organization_id,
        user_id=user_id,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    return rows, total
