"""Webhook endpoint and delivery bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from interventions.integrations.webhooks.events import EventType
from interventions.references.fields import NotNull, shown_as
from interventions.wire import DateTimeOut, Flag, ReadModel, Text, WireModel

URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://[^\s/?#@]+(?:[/?][^\s#]*)?$"
Url = Annotated[
    str,
    Field(
        strict=True,
        min_length=8,
        max_length=2000,
        pattern=URL_PATTERN,
        description=(
            "Where events are POSTed: `https://` (or `http://`), no credentials, no fragment. "
            "Its host must resolve, to public addresses only unless the operator allows "
            "private networks (`INTERVENTIONS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS`): else 422."
        ),
        examples=["https://example.org/hooks/interventions"],
    ),
]
EVENT_TYPES_DESCRIPTION = (
    "intervention.created · intervention.updated · intervention.checked_in · "
    "intervention.executed · intervention.verified (a decision, or a drill's validation) · "
    "intervention.cancelled · intervention.overdue · anomaly.resolved"
)
EventTypeName = Literal[
    "intervention.created",
    "intervention.updated",
    "intervention.checked_in",
    "intervention.executed",
    "intervention.verified",
    "intervention.cancelled",
    "intervention.overdue",
    "anomaly.resolved",
]
assert set(EventTypeName.__args__) == {str(e) for e in EventType}  # type: ignore[attr-defined]
EventTypes = Annotated[
    list[EventTypeName],
    Field(min_length=1, max_length=len(EventType), description=EVENT_TYPES_DESCRIPTION),
]
DeliveryStatus = Literal["pending", "delivered", "failed"]
DELIVERY_STATUS_DESCRIPTION = (
    "pending (queued or waiting for its next attempt) · delivered (2xx) · failed (every "
    "attempt of the schedule failed, or the receiver answered 410)"
)


class WebhookCreate(WireModel):
    """A receiver of the organisation's events. It receives what happens from its creation
    on (no back-fill)."""

    url: Url
    event_types: EventTypes
    description: Text | None = None
    enabled: Flag = True


class WebhookUpdate(WireModel):
    """Every field optional; `enabled: true` re-enables a disabled endpoint, which then
    receives the events since it was disabled."""

    url: Annotated[Url | None, NotNull, shown_as(Url)] = None
    event_types: Annotated[EventTypes | None, NotNull, shown_as(EventTypes)] = None
    description: Text | None = None
    enabled: Annotated[Flag | None, NotNull, shown_as(Flag)] = None


class WebhookRead(ReadModel):
    id: int
    organization_id: int
    url: str
    description: str | None
    event_types: list[str] = Field(description=EVENT_TYPES_DESCRIPTION)
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why it was disabled: by an admin, a 410 answer, or days of failures."
    )
    disabled_at: DateTimeOut | None
    failing_since: DateTimeOut | None = Field(
        description="Since when every attempt has failed (null after a success)."
    )
    last_journal_seq: int = Field(
        description="The organisation's last journal entry already turned into deliveries."
    )
    created_at: DateTimeOut
    updated_at: DateTimeOut
    deleted_at: DateTimeOut | None


class WebhookWithSecret(WebhookRead):
    secret: str = Field(
        description=(
            "The signing secret (`whsec_…`, Standard Webhooks): shown only at creation and "
            "rotation. Verify `webhook-signature` with it."
        )
    )


class DeliveryRead(ReadModel):
    id: int
    webhook_id: int
    message_id: str = Field(description="`webhook-id`: the same on every attempt and replay.")
    event_type: str
    journal_seq: int
    status: DeliveryStatus = Field(description=DELIVERY_STATUS_DESCRIPTION)
    attempts: int = Field(description="Attempts of the current series (a replay starts one).")
    next_attempt_at: DateTimeOut | None = Field(description="While pending.")
    last_attempt_at: DateTimeOut | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: DateTimeOut | None
    replays: int
    created_at: DateTimeOut
    payload: dict[str, Any] = Field(description="The body sent, as sent.")
