"""Reference data request and response bodies, per direction (issue 3, part 8).

Updates take every field as optional. A field that cannot be empty refuses ``null`` in the
same 400 as every other invalid field (``NotNull``), and the OpenAPI document shows it as
not nullable; the fields that may be cleared (``description``, ``email``, assignees,
``rrule``) accept ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, WithJsonSchema
from pydantic_core import PydanticCustomError

from interventions.wire import (
    DateTimeIn,
    DateTimeOut,
    Email,
    Flag,
    Id,
    IdList,
    Name,
    ReadModel,
    Storable,
    StrictChoice,
    Text,
    WireModel,
)

RuleType = Annotated[
    Literal[1, 2], StrictChoice, Field(description="1 check/maintenance · 2 training")
]
CompanyType = Annotated[
    Literal[1, 2, 3],
    StrictChoice,
    Field(description="1 verification body · 2 works/maintenance · 3 training body"),
]
Risk = Annotated[int, Field(strict=True, ge=0, le=3, description="0 (lowest) to 3 (highest)")]
Role = Annotated[
    Literal["admin", "manager", "viewer"],
    Field(description="admin: everything · manager: writes but profiles · viewer: reads"),
]
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


def _refuse_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("not_null", "Cannot be null")
    return value


NotNull = BeforeValidator(_refuse_null)


def _as(kind: Any) -> WithJsonSchema:
    """Document an optional update field that refuses ``null`` as ``kind`` alone."""
    return WithJsonSchema(TypeAdapter(kind).json_schema())


NameField = Annotated[Name | None, NotNull, _as(Name)]
IdField = Annotated[Id | None, NotNull, _as(Id)]
IdListField = Annotated[IdList | None, NotNull, _as(IdList)]
RuleTypeField = Annotated[RuleType | None, NotNull, _as(RuleType)]
CompanyTypeField = Annotated[CompanyType | None, NotNull, _as(CompanyType)]
RiskField = Annotated[Risk | None, NotNull, _as(Risk)]
RoleField = Annotated[Role | None, NotNull, _as(Role)]
FlagField = Annotated[Flag | None, NotNull, _as(Flag)]
DateTimeField = Annotated[DateTimeIn | None, NotNull, _as(DateTimeIn)]
DurationField = Annotated[DurationMinutes | None, NotNull, _as(DurationMinutes)]
HorizonField = Annotated[HorizonDays | None, NotNull, _as(HorizonDays)]


# --- sites --------------------------------------------------------------------------------------


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


# --- rules --------------------------------------------------------------------------------------


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


# --- site rules ---------------------------------------------------------------------------------


class SiteRuleCreate(WireModel):
    """A rule applied to a site, both of the organisation; one site rule per pair."""

    site_id: Id
    rule_id: Id


class SiteRuleUpdate(WireModel):
    site_id: IdField = None
    rule_id: IdField = None


class SiteRuleRead(ReadModel):
    id: int
    organization_id: int
    site_id: int
    rule_id: int
    archived_at: DateTimeOut | None
    created_at: DateTimeOut


# --- routines -----------------------------------------------------------------------------------


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
    assigned_profile_id: Id | None = Field(default=None, description="A profile id.")
    assigned_user_id: Id | None = Field(
        default=None,
        description=(
            "A user id: that user's profile in the caller's organisation is meant. "
            "With assignedProfileId too, both must name the same profile."
        ),
    )
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
    assigned_profile_id: Id | None = Field(default=None, description="A profile id.")
    assigned_user_id: Id | None = Field(
        default=None,
        description=(
            "A user id: that user's profile in the caller's organisation is meant. "
            "With assignedProfileId too, both must name the same profile."
        ),
    )
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


# --- companies and their contacts ---------------------------------------------------------------


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


class CompanyContactCreate(WireModel):
    company_id: Id
    name: Name
    email: Email | None = None


class CompanyContactUpdate(WireModel):
    """``null`` clears ``email``; ``companyId`` moves the contact to another company."""

    company_id: IdField = None
    name: NameField = None
    email: Email | None = None


class CompanyContactRead(ReadModel):
    id: int
    organization_id: int
    company_id: int
    name: str
    email: str | None
    archived_at: DateTimeOut | None
    created_at: DateTimeOut


# --- anomalies ----------------------------------------------------------------------------------


class AnomalyCreate(WireModel):
    """A new anomaly is open; its status then follows the curative interventions."""

    site_id: Id
    title: Name
    description: Text | None = None
    risk: Risk = 0


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
    created_at: DateTimeOut
    updated_at: DateTimeOut


# --- profiles -----------------------------------------------------------------------------------


class ProfileUpdate(WireModel):
    role: RoleField = None


class ProfileRead(ReadModel):
    id: int
    organization_id: int
    user_id: int
    email: str
    first_name: str | None
    last_name: str | None
    role: str = Field(description="admin · manager · viewer")
    archived_at: DateTimeOut | None
    created_at: DateTimeOut
