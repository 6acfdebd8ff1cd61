"""Intervention request and response bodies, per direction (seed pages 000–004, SPEC §4–5b)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from interventions.wire import (
    DateTimeIn,
    DateTimeOut,
    Email,
    Flag,
    Id,
    IdList,
    Name,
    Opaque,
    ReadModel,
    StrictChoice,
    Text,
    WireModel,
)

CreationStatus = Annotated[
    Literal[0, 1, 2],
    StrictChoice,
    Field(description="0 toScheduled · 1 scheduled · 2 done"),
]
Decision = Annotated[Literal[1, 2], StrictChoice, Field(description="1 accept · 2 reject")]


class AssigneeFields(WireModel):
    """The assignee as a profile (``assignedProfileId``) or as a user (``assignedUserId``, the
    older pages' name: that user's profile in the caller's organisation)."""

    assigned_company_contact_id: Id | None = None
    assigned_user_id: Id | None = Field(
        default=None,
        description=(
            "A user id: that user's profile in the caller's organisation is meant. "
            "With assignedProfileId too, both must name the same profile."
        ),
    )
    assigned_profile_id: Id | None = Field(default=None, description="A profile id.")

    def contact_given(self) -> bool:
        return "assigned_company_contact_id" in self.model_fields_set


class CurativeCreate(AssigneeFields):
    """Seed 000: a curative intervention that repairs open anomalies."""

    scheduled_start: DateTimeIn
    scheduled_end: DateTimeIn
    anomaly_ids: IdList
    creation_status: CreationStatus
    description: Text | None = None


class SignatureMeta(WireModel):
    name: Name
    mime_type: Literal["image/jpeg", "image/png", "image/webp"]
    size: Annotated[int, Field(strict=True, ge=1, le=9007199254740991)]


class ProviderIn(WireModel):
    first_name: Name
    last_name: Name
    email: Email | None = None
    action_comment: Text | None = None
    comment: Text | None = None


class UnplannedCreate(WireModel):
    """Seed 001: a preventive intervention recorded on site, already executed and signed."""

    company_id: Id
    site_ids: IdList
    rule_ids: IdList
    signature: SignatureMeta
    provider: ProviderIn
    actual_start: DateTimeIn | None = Field(
        default=None,
        description=(
            "When the provider started; defaults to now. Not in the future beyond the "
            "clock skew (INTERVENTIONS_CLOCK_SKEW_SECONDS, 5 minutes by default): 422."
        ),
    )


class PreviousAssigneeNotification(WireModel):
    send_email: Flag = False
    reason: Text | None = None


class PreventiveUpdate(AssigneeFields):
    """Seed 002. Every field optional; ``null`` clears the description and the assignees."""

    description: Text | None = None
    scheduled_start: DateTimeIn | None = None
    scheduled_end: DateTimeIn | None = None
    site_rule_ids: IdList | None = None
    creation_status: CreationStatus | None = None
    send_update_email_to_current_assignee: Flag = False
    previous_assignee_notification: PreviousAssigneeNotification | None = None


class TrainingUpdate(AssigneeFields):
    """Seed 003."""

    description: Text | None = None
    scheduled_start: DateTimeIn | None = None
    scheduled_end: DateTimeIn | None = None
    rule_id: Id | None = None
    site_ids: IdList | None = None
    creation_status: CreationStatus | None = None
    validate_intervention: Flag = False


class VerifyRequest(WireModel):
    """Seed 004."""

    decision_comment: Annotated[Text, Field(min_length=1)]
    decision: Decision
    notification_id: Annotated[Opaque, Field(max_length=64)] | None = None


class RoutineInterventionCreate(WireModel):
    scheduled_start: DateTimeIn
    scheduled_end: DateTimeIn
    creation_status: CreationStatus
    routine_id: Id


class TrainingCreate(AssigneeFields):
    scheduled_start: DateTimeIn
    scheduled_end: DateTimeIn
    rule_id: Id
    site_ids: IdList
    creation_status: CreationStatus
    description: Text | None = None


Pin = Annotated[int, Field(strict=True, ge=100000, le=999999, description="The 6-digit PIN.")]


class CheckInRequest(WireModel):
    """The provider on site proves it with the intervention's PIN."""

    intervention_id: Id
    code_pin: Pin


class ExecutionFields(WireModel):
    """The provider has done the job: who, what, the signature; a drill's attendee count."""

    first_name: Name
    last_name: Name
    signature: SignatureMeta
    email: Email | None = None
    provider_action_comment: Text | None = None
    comment: Text | None = None
    attendee_count: Annotated[int, Field(strict=True, ge=0, le=1_000_000)] | None = None


class ExecuteRequest(ExecutionFields):
    """The mobile execution: the intervention, then what the provider did."""

    intervention_id: Id


class CancelRequest(WireModel):
    cancellation_reason: Text | None = None


class InformationEmailRequest(WireModel):
    email: Email
    provider_link: Flag = Field(
        default=False,
        description=(
            "Also create a provider link for the assigned company contact (its default expiry) "
            "and put its URL in the e-mail; 422 when the intervention has no assigned contact."
        ),
    )


class InterventionRead(ReadModel):
    """The intervention resource (SPEC §4.1), with both generations of member names."""

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
    img_signature: str | None = Field(description="Download path of the signature image.")
    code_pin: int
    auto_created: bool
    creation_status: int = Field(description="0 toScheduled · 1 scheduled · 2 done", ge=0, le=2)
    scheduled_start: DateTimeOut | None
    scheduled_end: DateTimeOut | None
    actual_start: DateTimeOut | None
    actual_end: DateTimeOut | None
    provider_name: str | None
    provider_email: str | None
    provider_action_comment: str | None
    provider_general_comment: str | None
    assigned_company_contact_id: int | None
    assigned_user_id: int | None = Field(description="User of the assigned profile.")
    assigned_profile_id: int | None
    verified_by_user_id: int | None
    verified_by_id: int | None
    verified_at: DateTimeOut | None
    decision_comment: str | None
    attendee_count: int | None
    routine_id: int | None
    organization_id: int
    created_by_user_id: int | None
    created_by_id: int | None
    company_id: int | None
    negotiation_end_date: DateTimeOut | None
    check_type: int | None = Field(description="1 planned · 2 unplanned")
    archived_at: DateTimeOut | None
    deleted_at: DateTimeOut | None = Field(description="When it was cancelled (status 7).")
    cancellation_reason: str | None = Field(
        default=None, description="Why it was cancelled, as given then."
    )
    updated_at: DateTimeOut
    created_at: DateTimeOut
    version: int = Field(
        description='1 at creation, one more at every change: the `ETag` is `"<id>.<version>"`.',
        ge=1,
    )
    overdue: bool = Field(
        description=(
            "Planned or in progress (status 1, 2 or 3) and `scheduledEnd` has passed, at the "
            "time of the answer."
        )
    )
    site_ids: list[int]
    site_rule_ids: list[int]
    rule_ids: list[int]
    anomaly_ids: list[int]


class SignedIntervention(ReadModel):
    """An executed intervention and where to upload its signature."""

    data: InterventionRead
    presigned_url: str = Field(description="Expiring URL: PUT the signature image bytes to it.")


class SiteSummary(ReadModel):
    id: int
    name: str


class SiteRuleSummary(ReadModel):
    id: int
    site_id: int
    rule_id: int


class RuleSummary(ReadModel):
    id: int
    name: str
    type: int = Field(description="1 check/maintenance · 2 training")


class AnomalySummary(ReadModel):
    id: int
    site_id: int
    title: str
    risk: int = Field(ge=0, le=3)
    status: int = Field(description="0 open · 1 in repair · 2 resolved")


class HistoryEntryRead(ReadModel):
    id: int = Field(description="The entry's position in the organisation's journal.")
    action: str
    user_id: int | None
    actor: dict[str, Any] = Field(
        description="Who acted: {type: user, userId, profileId}, {type: provider, name, …} "
        "for an execution on site, or {type: system, name}."
    )
    changes: dict[str, Any] = Field(description="Member → value, or {from, to} for a change.")
    created_at: DateTimeOut


class ActionsRead(ReadModel):
    """What the caller may do now with this intervention."""

    can_be_updated: bool
    can_be_deleted: bool
    can_be_executed: bool = Field(description="Check-in or execution on site.")
    can_be_verified: bool = Field(description="Verification, or validation of a drill.")


class InterventionDetail(InterventionRead):
    """The intervention resource enriched for one read."""

    sites: list[SiteSummary]
    site_rules: list[SiteRuleSummary]
    rules: list[RuleSummary]
    anomalies: list[AnomalySummary]
    signature_url: str | None = Field(description="Download path of the signature, when any.")
    history: list[HistoryEntryRead]
    actions: ActionsRead


# --- the lifecycle as data (GET /interventions/v2/rs/lifecycle) -----------------------------


class EnumMemberRead(ReadModel):
    value: int
    name: str = Field(description="The wire name (camelCase), as SPEC §4.2 gives it.")
    label: str = Field(description="In words.")


class StatusTarget(ReadModel):
    """A fixed target."""

    status: int = Field(description="The status it leads to (an anomaly status for anomalies).")


class RuleTarget(ReadModel):
    """A target the request chooses."""

    rule: str = Field(description="The rule's name: `creationStatus`, `decision`, …")
    description: str
    input: str | None = Field(description="The request's member the rule reads, if any.")
    values: dict[str, int] = Field(
        description="Each value of `input` (as a string) → the status it leads to."
    )
    keeps: bool = Field(
        description="Whether the current status is kept when the rule does not move it."
    )


Target = Annotated[StatusTarget | RuleTarget, Field(union_mode="left_to_right")]


class GuardRead(ReadModel):
    """A condition besides the source status, and the refusal when it does not hold."""

    name: str
    status: int = Field(description="The HTTP status of the refusal.")
    detail: str = Field(description="The refusal's message.")


class AnomalyMoveRead(ReadModel):
    """What the transition does to a curative intervention's anomalies in `source`."""

    source: int = Field(description="0 open · 1 in repair · 2 resolved")
    target: Target


class TransitionRead(ReadModel):
    action: str = Field(description="Its name, as the history records it.")
    label: str = Field(description="In words: `… cannot be {label}`.")
    creates: bool = Field(description="Whether it starts from no intervention (a creation).")
    sources: list[int] = Field(description="The statuses it may start from.")
    target: Target
    kinds: list[int] = Field(description="The intervention types it applies to.")
    guards: list[GuardRead]
    anomalies: AnomalyMoveRead | None


class ActionFlagRead(ReadModel):
    """A flag of an intervention's `actions`: set when the caller may write and one of its
    transitions is allowed from the intervention's status on its type."""

    flag: str = Field(description="Its name in `actions` (`canBeUpdated`…).")
    actions: list[str] = Field(description="The transitions it stands for.")


class LifecycleRead(ReadModel):
    """The table of transitions the service obeys, with the enums it speaks of."""

    statuses: list[EnumMemberRead]
    kinds: list[EnumMemberRead]
    creation_statuses: list[EnumMemberRead]
    decisions: list[EnumMemberRead]
    anomaly_statuses: list[EnumMemberRead]
    transitions: list[TransitionRead]
    action_flags: list[ActionFlagRead]
