"""Profile (membership) and invitation request and response bodies (issue 9, item 6)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from interventions.auth.roles import Role
from interventions.references.fields import NotNull, shown_as
from interventions.wire import DateTimeOut, Email, Name, Opaque, ReadModel, WireModel

# The roles as the wire gives them (a Literal of the enum's members: the schema's ``enum``).
GivenRole = Annotated[
    Literal[Role.ADMIN, Role.MANAGER, Role.VIEWER],
    Field(description="admin: everything · manager: writes but profiles · viewer: reads"),
]
RoleField = Annotated[GivenRole | None, NotNull, shown_as(GivenRole)]
InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
STATUS_DESCRIPTION = "pending (can be accepted) · accepted (the profile exists) · revoked · expired"
Token = Annotated[
    Opaque,
    Field(max_length=200, description="The token of the invitation e-mail's link."),
]
Password = Annotated[Opaque, Field(min_length=8, max_length=1000)]


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


class InvitationCreate(WireModel):
    """An offer of membership of the caller's organisation, e-mailed to ``email``. Nobody
    joins until they accept: the answer is the same whether the e-mail has an account or
    not."""

    email: Email
    role: GivenRole


class InvitationRead(ReadModel):
    """An invitation as its organisation's admins see it: nothing about the invited account."""

    id: int
    organization_id: int
    email: str
    role: str = Field(description="admin · manager · viewer")
    status: InvitationStatus = Field(description=STATUS_DESCRIPTION)
    invited_by_profile_id: int
    profile_id: int | None = Field(description="The membership, once accepted.")
    expires_at: DateTimeOut
    accepted_at: DateTimeOut | None
    revoked_at: DateTimeOut | None
    created_at: DateTimeOut


class InvitationAccept(WireModel):
    """Accept as the logged-in user: the account's e-mail must be the invited one."""

    token: Token


class InvitationAcceptWithPassword(WireModel):
    """Accept without a session. The invited e-mail's account, if there is one, joins when
    ``password`` is its password (its names stay as they are); otherwise the account is
    created with ``password`` and the names."""

    token: Token
    password: Password
    first_name: Name | None = Field(default=None, description="For a new account only.")
    last_name: Name | None = Field(default=None, description="For a new account only.")


AutoAcceptDays = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=365,
        description=(
            "Executed interventions not verified within this many days are accepted "
            "automatically (decision comment 'Accepted automatically after N days', no "
            "verifier); null: never."
        ),
    ),
]


class OrganizationRead(ReadModel):
    id: int
    name: str
    auto_accept_after_days: int | None = Field(
        description="Days after which an executed intervention is accepted; null: never."
    )
    created_at: DateTimeOut


class OrganizationUpdate(WireModel):
    auto_accept_after_days: AutoAcceptDays | None = None
