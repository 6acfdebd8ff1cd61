"""Login, refresh and the caller's own identity on the wire."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from interventions.wire import Id, Name, Opaque, ReadModel, WireModel


class LoginCredentials(WireModel):
    email: Annotated[Name, Field(max_length=250)]
    password: Annotated[Opaque, Field(max_length=1000)]
    organization_id: Id | None = None


class TokensRead(ReadModel):
    access_token: str
    refresh_token: str
    session_token: str


class RefreshRequest(WireModel):
    refresh_token: Annotated[Opaque, Field(max_length=4000)]


class AccessTokenRead(ReadModel):
    access_token: str


class MeRead(ReadModel):
    user_id: int
    profile_id: int
    organization_id: int
    role: str
    email: str
    first_name: str | None
    last_name: str | None
