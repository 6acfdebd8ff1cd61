from __future__ import annotations

from interventions.wire import DateTimeOut, ReadModel


class NotificationRead(ReadModel):
    id: str
    type: str
    intervention_id: int | None
    message: str | None
    read_at: DateTimeOut | None
    created_at: DateTimeOut
