"""Provider link bodies: the organisation's side (create, read) and the provider's (the
intervention as a provider sees it, the check-in)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interventions.interventions.schemas import (
    AnomalySummary,
    Pin,
    RuleSummary,
    SiteSummary,
)
from interventions.wire import DateTimeIn, DateTimeOut, ReadModel, WireModel

LinkStatus = Literal["active", "expired", "revoked"]


class ProviderLinkCreate(WireModel):
    expires_at: DateTimeIn | None = Field(
        default=None,
        description=(
            "When the link stops working: in the future, at most 90 days ahead (else 422). "
            "Default: 7 days after `scheduledEnd` (or after now, when that has passed), at "
            "most 90 days ahead."
        ),
    )


class ProviderLinkRead(ReadModel):
    id: int
    intervention_id: int
    contact_id: int = Field(description="The company contact the link acts for.")
    status: LinkStatus = Field(description="active · expired · revoked")
    expires_at: DateTimeOut
    revoked_at: DateTimeOut | None
    created_by_user_id: int | None
    created_at: DateTimeOut


class ProviderLinkCreated(ProviderLinkRead):
    url: str = Field(
        description="The link: `{public URL}/provider/v1/{token}`. Shown once, never again."
    )


class ProviderActions(ReadModel):
    can_check_in: bool
    can_execute: bool


class ProviderLinkSummary(ReadModel):
    id: int
    expires_at: DateTimeOut


class ProviderIntervention(ReadModel):
    """The intervention as its provider sees it through a link: the web read's members but
    its PIN, its organisation's people (assignee, creator, verifier), its routine and its
    signature's download path."""

    id: int
    status: int = Field(
        description=(
            "1 toSchedule · 2 scheduled · 3 inProgress · 4 toVerify · 5 validated · "
            "6 rejected · 7 cancelled"
        ),
        ge=1,
        le=7,
    )
    type: int = Field(description="1 preventive · 2 curative · 3 training exercise", ge=1, le=3)
    description: str | None
    creation_status: int = Field(description="0 toScheduled · 1 scheduled · 2 done", ge=0, le=2)
    scheduled_start: DateTimeOut | None
    scheduled_end: DateTimeOut | None
    actual_start: DateTimeOut | None
    actual_end: DateTimeOut | None
    overdue: bool
    provider_name: str | None
    provider_email: str | None
    provider_action_comment: str | None
    provider_general_comment: str | None
    assigned_company_contact_id: int | None
    company_id: int | None
    verified_at: DateTimeOut | None
    decision_comment: str | None
    attendee_count: int | None
    check_type: int | None = Field(description="1 planned · 2 unplanned")
    deleted_at: DateTimeOut | None = Field(description="When it was cancelled (status 7).")
    updated_at: DateTimeOut
    created_at: DateTimeOut
    site_ids: list[int]
    rule_ids: list[int]
    anomaly_ids: list[int]
    sites: list[SiteSummary]
    rules: list[RuleSummary]
    anomalies: list[AnomalySummary]
    signed: bool = Field(description="Whether the execution's signature was announced.")
    actions: ProviderActions
    link: ProviderLinkSummary


class ProviderCheckIn(WireModel):
    """The provider on site proves it with the intervention's PIN."""

    code_pin: Pin


class SignedProviderIntervention(ReadModel):
    data: ProviderIntervention
    presigned_url: str = Field(description="Expiring URL: PUT the signature image bytes to it.")
