"""Anomaly request and response bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from interventions.references.fields import NameField, NotNull, shown_as
from interventions.wire import DateTimeOut, Id, Name, ReadModel, Text, WireModel

Risk = Annotated[int, Field(strict=True, ge=0, le=3, description="0 (lowest) to 3 (highest)")]
RiskField = Annotated[Risk | None, NotNull, shown_as(Risk)]


class AnomalyCreate(WireModel):
    """A new anomaly is open; its status then follows the curative interventions."""

    site_id: Id
    title: Name
    description: Text | None = None
    risk: Risk = 0
    raised_by_intervention_id: Id | None = Field(
        default=None,
        description="The check that found it (an intervention of the organisation, else 422);"
        " the printable register lists the anomaly among that check's observations.",
    )


class AnomalyUpdate(WireModel):
    """``null`` clears ``description``. The status is not the client's to set."""

    title: NameField = None
    description: Text | None = None
    risk: RiskField = None


class AnomalyRead(ReadModel):
    id: int
    organization_id: int
    site_id: int
    title: str
    description: str | None
    risk: int = Field(ge=0, le=3)
    status: int = Field(description="0 open · 1 in repair · 2 resolved", ge=0, le=2)
    resolved_at: DateTimeOut | None
    resolved_by_user_id: int | None
    raised_by_intervention_id: int | None
    created_at: DateTimeOut
    updated_at: DateTimeOut
