"""Routine request and response bodies. ``null`` clears ``rrule`` and the assignees."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from interventions.references.fields import NameField, NotNull, shown_as
from interventions.wire import (
    DateTimeIn,
    DateTimeOut,
    Flag,
    Id,
    IdList,
    Name,
    ReadModel,
    Storable,
    WireModel,
)

RRuleText = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=500,
        description="An RFC 5545 RRULE (`FREQ=…;…`), at most hourly; DTSTART is `dtstart`.",
        examples=["FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=15"],
    ),
    Storable,
]
DurationMinutes = Annotated[
    int, Field(strict=True, ge=1, le=10080, description="Length of each occurrence.")
]
HorizonDays = Annotated[
    int,
    Field(strict=True, ge=1, le=366, description="How far ahead occurrences are planned."),
]
IdListField = Annotated[IdList | None, NotNull, shown_as(IdList)]
FlagField = Annotated[Flag | None, NotNull, shown_as(Flag)]
DateTimeField = Annotated[DateTimeIn | None, NotNull, shown_as(DateTimeIn)]
DurationField = Annotated[DurationMinutes | None, NotNull, shown_as(DurationMinutes)]
HorizonField = Annotated[HorizonDays | None, NotNull, shown_as(HorizonDays)]
AssignedProfileId = Annotated[Id | None, Field(description="A profile id.")]
AssignedUserId = Annotated[
    Id | None,
    Field(
        description=(
            "A user id: that user's profile in the caller's organisation is meant. "
            "With assignedProfileId too, both must name the same profile."
        )
    ),
]


class RoutineCreate(WireModel):
    name: Name
    site_rule_ids: IdList
    rrule: RRuleText | None = Field(
        default=None, description="Without one the routine is planned by hand only."
    )
    dtstart: DateTimeIn | None = Field(
        default=None, description="First occurrence of the RRULE; defaults to now."
    )
    duration_minutes: DurationMinutes = 120
    horizon_days: HorizonDays = 30
    auto_create_enabled: Flag = Field(
        default=False,
        description="The worker creates the occurrences' interventions ahead; needs an rrule.",
    )
    assigned_profile_id: AssignedProfileId = None
    assigned_user_id: AssignedUserId = None
    assigned_company_contact_id: Id | None = None


class RoutineUpdate(WireModel):
    """``null`` clears ``rrule`` and the assignees."""

    name: NameField = None
    site_rule_ids: IdListField = Field(default=None, description="Replaces the set.")
    rrule: RRuleText | None = None
    dtstart: DateTimeField = None
    duration_minutes: DurationField = None
    horizon_days: HorizonField = None
    auto_create_enabled: FlagField = None
    assigned_profile_id: AssignedProfileId = None
    assigned_user_id: AssignedUserId = None
    assigned_company_contact_id: Id | None = None


class RoutineRead(ReadModel):
    id: int
    organization_id: int
    name: str
    site_rule_ids: list[int]
    rrule: str | None
    dtstart: DateTimeOut | None
    duration_minutes: int
    horizon_days: int
    auto_create_enabled: bool
    assigned_profile_id: int | None
    assigned_user_id: int | None = Field(description="User of the assigned profile.")
    assigned_company_contact_id: int | None
    archived_at: DateTimeOut | None
    created_at: DateTimeOut
