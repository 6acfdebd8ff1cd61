"""Which event a journal entry is, and the message an endpoint receives for it.

The journal is the outbox (README, "Webhooks"): every change already writes its entries in
its own transaction, so an event exists exactly when its change committed. An entry is at
most one event, so that its message id (``msg_<organisation>_<seq>``) names one message.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from interventions.register.journal import Subject
from interventions.wire import format_datetime

RESOLVED = 2  # anomaly status (SPEC §4.2)


class EventType(StrEnum):
    INTERVENTION_CREATED = "intervention.created"
    INTERVENTION_UPDATED = "intervention.updated"
    INTERVENTION_CHECKED_IN = "intervention.checked_in"
    INTERVENTION_EXECUTED = "intervention.executed"
    INTERVENTION_VERIFIED = "intervention.verified"
    INTERVENTION_CANCELLED = "intervention.cancelled"
    INTERVENTION_OVERDUE = "intervention.overdue"
    ANOMALY_RESOLVED = "anomaly.resolved"


# The intervention actions of the journal (``interventions.lifecycle.Action`` and the
# overdue marker) and their events. Validating a drill is its verification (status 5, with
# its verifier): ``intervention.verified``. The information e-mail changes nothing: no event.
INTERVENTION_EVENTS = {
    "create": EventType.INTERVENTION_CREATED,
    "auto-create": EventType.INTERVENTION_CREATED,
    "update": EventType.INTERVENTION_UPDATED,
    "validate": EventType.INTERVENTION_VERIFIED,
    "check-in": EventType.INTERVENTION_CHECKED_IN,
    "execute": EventType.INTERVENTION_EXECUTED,
    "verify": EventType.INTERVENTION_VERIFIED,
    "cancel": EventType.INTERVENTION_CANCELLED,
    "overdue": EventType.INTERVENTION_OVERDUE,
}


def event_type(subject_type: str, action: str, changes: Any) -> EventType | None:
    """The event an entry is, or ``None`` for the entries no endpoint can subscribe to."""
    if subject_type == Subject.INTERVENTION:
        return INTERVENTION_EVENTS.get(action)
    if subject_type == Subject.ANOMALY and isinstance(changes, dict):
        status = changes.get("status")
        if isinstance(status, dict) and status.get("to") == RESOLVED:
            return EventType.ANOMALY_RESOLVED
    return None


def message_id(organization_id: int, seq: int) -> str:
    """Stable per entry (hence per endpoint and entry): retries and replays carry it, so
    that receivers drop duplicates."""
    return f"msg_{organization_id}_{seq}"


def payload(entry: Any, kind: EventType) -> str:
    """The body sent for a ``journal_entries`` row: the Standard Webhooks envelope
    (``type``, ``timestamp``, ``data``), as the exact bytes to sign and send."""
    document = {
        "type": str(kind),
        "timestamp": format_datetime(entry.recorded_at),
        "data": {
            "organizationId": entry.organization_id,
            "journalSeq": entry.seq,
            "subject": {"type": entry.subject_type, "id": entry.subject_id},
            "action": entry.action,
            "changes": entry.changes,
            "actor": entry.actor,
            "entryHash": entry.hash,
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
