"""Webhook endpoints, managed by the organisation's admins, and their delivery log."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from interventions.auth.dependencies import Caller
from interventions.config import Settings
from interventions.db import Executor, utcnow
from interventions.errors import Conflict, NotFound, Unprocessable
from interventions.integrations.webhooks import repository as repo
from interventions.integrations.webhooks.addresses import AddressRefused, resolve
from interventions.integrations.webhooks.schemas import (
    DeliveryRead,
    DeliveryStatus,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from interventions.register import journal
from interventions.transactions import RequestDatabase

SECRET_BYTES = 32
DISABLED_BY_ADMIN = "Disabled by an admin."


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def webhook_read(row: Any) -> WebhookRead:
    return WebhookRead(
        id=row.id,
        organization_id=row.organization_id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        failing_since=row.failing_since,
        last_journal_seq=row.journal_cursor,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def _with_secret(row: Any) -> WebhookWithSecret:
    return WebhookWithSecret(**webhook_read(row).model_dump(), secret=row.secret)


def delivery_read(row: Any) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        webhook_id=row.endpoint_id,
        message_id=row.message_id,
        event_type=row.event_type,
        journal_seq=row.journal_seq,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == repo.PENDING else None,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        replays=row.replays,
        created_at=row.created_at,
        payload=json.loads(row.payload),
    )


async def _checked_url(url: str, settings: Settings) -> str:
    try:
        await resolve(url, allow_private=settings.webhooks_allow_private_networks)
    except AddressRefused as exc:
        raise Unprocessable(str(exc), errors=[{"field": "url", "message": str(exc)}]) from exc
    return url


def _unique(event_types: list[str]) -> list[str]:
    return list(dict.fromkeys(event_types))


async def create(
    ctx: RequestDatabase, settings: Settings, caller: Caller, body: WebhookCreate
) -> WebhookWithSecret:
    """A new endpoint, starting at the organisation's journal head: it receives what
    happens from now on. Its host is resolved before the transaction starts (no lock or
    connection is held while DNS answers)."""
    url = await _checked_url(body.url, settings)
    db = await ctx.executor()
    head = await journal.head(db, caller.organization_id)
    row = await repo.insert_endpoint(
        db,
        caller.organization_id,
        url=url,
        description=body.description,
        event_types=_unique(list(body.event_types)),
        secret=new_secret(),
        enabled=body.enabled,
        journal_cursor=0 if head is None else head.seq,
        created_by_profile_id=caller.profile_id,
        now=utcnow(),
    )
    return _with_secret(row)


async def _endpoint(db: Executor, caller: Caller, endpoint_id: int, *, lock: bool = False) -> Any:
    row = await repo.endpoint(db, caller.organization_id, endpoint_id, lock=lock)
    if row is None:
        raise NotFound(f"No webhook {endpoint_id}.")
    return row


async def _live_endpoint(db: Executor, caller: Caller, endpoint_id: int) -> Any:
    row = await _endpoint(db, caller, endpoint_id, lock=True)
    if row.deleted_at is not None:
        raise Conflict(f"Webhook {endpoint_id} is deleted; it takes no more changes.")
    return row


async def list_endpoints(
    db: Executor, caller: Caller, *, page: int, page_size: int
) -> tuple[list[WebhookRead], int]:
    rows, total = await repo.endpoints_page(
        db, caller.organization_id, offset=(page - 1) * page_size, limit=page_size
    )
    return [webhook_read(r) for r in rows], total


async def get_endpoint(db: Executor, caller: Caller, endpoint_id: int) -> WebhookRead:
    return webhook_read(await _endpoint(db, caller, endpoint_id))


async def update_endpoint(
    ctx: RequestDatabase, settings: Settings, caller: Caller, endpoint_id: int, body: WebhookUpdate
) -> WebhookRead:
    """A new URL is resolved before the transaction starts, as at creation (so a URL that
    cannot be called is a 422 whether the id exists or not)."""
    values: dict[str, Any] = {}
    if body.url is not None:
        values["url"] = await _checked_url(body.url, settings)
    db = await ctx.executor()
    row = await _live_endpoint(db, caller, endpoint_id)
    now = utcnow()
    values["updated_at"] = now
    given = body.model_fields_set
    if body.event_types is not None:
        values["event_types"] = _unique(list(body.event_types))
    if "description" in given:
        values["description"] = body.description
    if body.enabled is True and not row.enabled:
        # Back on: what happened meanwhile follows (the cursor stayed where it was).
        values.update(enabled=True, disabled_reason=None, disabled_at=None, failing_since=None)
    elif body.enabled is False and row.enabled:
        values.update(enabled=False, disabled_reason=DISABLED_BY_ADMIN, disabled_at=now)
    return webhook_read(await repo.update_endpoint(db, row, **values))


async def rotate_secret(db: Executor, caller: Caller, endpoint_id: int) -> WebhookWithSecret:
    """A new secret, at once: the next attempt is signed with it."""
    row = await _live_endpoint(db, caller, endpoint_id)
    updated = await repo.update_endpoint(db, row, secret=new_secret(), updated_at=utcnow())
    return _with_secret(updated)


async def delete_endpoint(db: Executor, caller: Caller, endpoint_id: int) -> None:
    """Disabled for good; the endpoint and its delivery log stay readable."""
    row = await _live_endpoint(db, caller, endpoint_id)
    now = utcnow()
    reason = row.disabled_reason if not row.enabled else "Deleted by an admin."
    await repo.update_endpoint(
        db,
        row,
        enabled=False,
        disabled_reason=reason,
        disabled_at=row.disabled_at or now,
        deleted_at=now,
        updated_at=now,
    )


async def list_deliveries(
    db: Executor,
    caller: Caller,
    endpoint_id: int,
    *,
    status: DeliveryStatus | None,
    page: int,
    page_size: int,
) -> tuple[list[DeliveryRead], int]:
    await _endpoint(db, caller, endpoint_id)
    rows, total = await repo.deliveries_page(
        db,
        caller.organization_id,
        endpoint_id,
        status=status,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    return [delivery_read(r) for r in rows], total


async def replay(db: Executor, caller: Caller, endpoint_id: int, delivery_id: int) -> DeliveryRead:
    """The same message (id and payload) queued again, for a new series of attempts."""
    row = await _live_endpoint(db, caller, endpoint_id)
    if not row.enabled:
        raise Conflict(f"Webhook {endpoint_id} is disabled: enable it before replaying.")
    found = await repo.delivery(db, caller.organization_id, endpoint_id, delivery_id)
    if found is None:
        raise NotFound(f"No delivery {delivery_id} for webhook {endpoint_id}.")
    replayed = await repo.replay(db, caller.organization_id, endpoint_id, delivery_id, utcnow())
    if replayed is None:
        raise Conflict(f"Delivery {delivery_id} is being sent right now; try again shortly.")
    return delivery_read(replayed)
