"""Company request and response bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from interventions.references.fields import NameField, NotNull, shown_as
from interventions.wire import DateTimeOut, Email, Name, ReadModel, StrictChoice, WireModel

CompanyType = Annotated[
    Literal[1, 2, 3],
    StrictChoice,
    Field(description="1 verification body · 2 works/maintenance · 3 training body"),
]
CompanyTypeField = Annotated[CompanyType | None, NotNull, shown_as(CompanyType)]


class CompanyCreate(WireModel):
    name: Name
    type: CompanyType
    email: Email | None = None


class CompanyUpdate(WireModel):
    """``null`` clears ``email``."""

    name: NameField = None
    type: CompanyTypeField = None
    email: Email | None = None


class CompanyRead(ReadModel):
    id: int
    organization_id: int
    name: str
    type: int = Field(
        description="1 verification body · 2 works/maintenance · 3 training body", ge=1, le=3
    )
    email: str | None
    archived_at: DateTimeOut | None
    created_at: DateTimeOut
