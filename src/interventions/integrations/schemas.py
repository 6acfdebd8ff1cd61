"""Calendar feed request and response bodies, per direction."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from interventions.wire import DateTimeOut, Id, Name, ReadModel, WireModel

FEED_NAME_DESCRIPTION = (
    "The calendar's name in calendar apps (`X-WR-CALNAME`); by default "
    "`Interventions: <the subject's name>`."
)


class UserFeedCreate(WireModel):
    """The interventions assigned to a member (their profile in the organisation)."""

    scope: Literal["user"]
    user_id: Id = Field(
        description="A user id: that user's profile in the caller's organisation is meant."
    )
    name: Name | None = Field(default=None, description=FEED_NAME_DESCRIPTION)


class SiteFeedCreate(WireModel):
    """The interventions on a site."""

    scope: Literal["site"]
    site_id: Id
    name: Name | None = Field(default=None, description=FEED_NAME_DESCRIPTION)


class ContactFeedCreate(WireModel):
    """The interventions assigned to a company contact (a provider)."""

    scope: Literal["contact"]
    company_contact_id: Id
    name: Name | None = Field(default=None, description=FEED_NAME_DESCRIPTION)


_SCOPES = frozenset({"user", "site", "contact"})


class CalendarFeedCreate(
    RootModel[
        Annotated[UserFeedCreate | SiteFeedCreate | ContactFeedCreate, Field(discriminator="scope")]
    ]
):
    """A feed of one subject, which `scope` names."""

    @model_validator(mode="wrap")
    @classmethod
    def _wire_paths(cls, value: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """The union's errors at their JSON paths: pydantic puts the tag first
        (``site.siteId``), and a bad tag at the union itself, where a client looks for
        ``scope``."""
        try:
            return handler(value)
        except ValidationError as exc:
            details: list[InitErrorDetails] = []
            for error in exc.errors():
                loc = tuple(error["loc"])
                if loc[:1] and loc[0] in _SCOPES:
                    loc = loc[1:]
                elif error["type"].startswith("union_tag_"):
                    loc = ("scope",)
                details.append(
                    {
                        "type": PydanticCustomError(error["type"], error["msg"]),
                        "loc": loc,
                        "input": error["input"],
                    }
                )
            raise ValidationError.from_exception_data(exc.title, details) from None


class CalendarFeedRead(ReadModel):
    """A feed, without its token (shown once, at creation and rotation, in ``url``)."""

    id: int
    scope: Literal["user", "site", "contact"] = Field(
        description="user: the interventions assigned to a member · site: those on a site · "
        "contact: those assigned to a company contact."
    )
    user_id: int | None = Field(description="Scope user: the member's user id.")
    profile_id: int | None = Field(description="Scope user: the member's profile id.")
    site_id: int | None = Field(description="Scope site.")
    company_contact_id: int | None = Field(description="Scope contact.")
    name: str
    created_by_profile_id: int
    created_at: DateTimeOut
    rotated_at: DateTimeOut | None = Field(description="When the token was last replaced.")
    revoked_at: DateTimeOut | None
    last_used_at: DateTimeOut | None = Field(
        description="When a calendar app last read the feed (to the minute)."
    )


class CalendarFeedWithUrl(CalendarFeedRead):
    """A feed just created or rotated, with its secret URL: shown this once, never again."""

    url: str = Field(
        description="The feed's secret URL (`…/integrations/v1/calendar/{token}.ics`): give it "
        "to a calendar app. Anyone holding it reads the feed; rotate or revoke it if it leaks."
    )
