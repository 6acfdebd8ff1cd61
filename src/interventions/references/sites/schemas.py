"""Site request and response bodies."""

from __future__ import annotations

from interventions.references.fields import NameField
from interventions.wire import DateTimeOut, Name, ReadModel, WireModel


class SiteCreate(WireModel):
    name: Name


class SiteUpdate(WireModel):
    name: NameField = None


class SiteRead(ReadModel):
    id: int
    organization_id: int
    name: str
    archived_at: DateTimeOut | None
    created_at: DateTimeOut
