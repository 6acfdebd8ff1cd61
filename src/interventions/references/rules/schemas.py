"""Rule request and response bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from interventions.references.fields import NameField, NotNull, shown_as
from interventions.wire import DateTimeOut, Name, ReadModel, StrictChoice, WireModel

RuleType = Annotated[
    Literal[1, 2], StrictChoice, Field(description="1 check/maintenance · 2 training")
]
RuleTypeField = Annotated[RuleType | None, NotNull, shown_as(RuleType)]


class RuleCreate(WireModel):
    name: Name
    type: RuleType


class RuleUpdate(WireModel):
    name: NameField = None
    type: RuleTypeField = None


class RuleRead(ReadModel):
    id: int
    organization_id: int
    name: str
    type: int = Field(description="1 check/maintenance · 2 training", ge=1, le=2)
    archived_at: DateTimeOut | None
    created_at: DateTimeOut
