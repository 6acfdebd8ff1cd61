"""Users, their memberships of organisations (profiles) and the invitations to them,
server-side sessions, rate limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from interventions.auth.roles import Role
from interventions.db import ID, Base, UTCDateTime, utcnow

ROLES = tuple(Role)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    # Stored lower-cased: e-mail addresses are matched case-insensitively at login.
    email: Mapped[str] = mapped_column(String(250), unique=True)
    password_hash: Mapped[str] = mapped_column(String(250))
    first_name: Mapped[str | None] = mapped_column(String(250))
    last_name: Mapped[str | None] = mapped_column(String(250))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Profile(Base):
    """A user's membership of one organisation, with a role."""

    __tablename__ = "profiles"
    __table_args__ = (
        UniqueConstraint("user_id", "organization_id"),
        CheckConstraint("role IN ('admin', 'manager', 'viewer')", name="role"),
        Index("ix_profiles_organization_id_role", "organization_id", "role"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    role: Mapped[str] = mapped_column(String(16))
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Invitation(Base):
    """An offer of membership, e-mailed to ``email``; the profile exists only once accepted.

    Only a SHA-256 of the token is kept: the token itself is in the e-mail alone. A token is
    used once (``accepted_at``), until ``expires_at``, unless revoked (``revoked_at``).
    """

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'manager', 'viewer')", name="role"),
        Index("ix_invitations_organization_id_email", "organization_id", "email"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    # Lower-cased, as users' e-mails are.
    email: Mapped[str] = mapped_column(String(250))
    role: Mapped[str] = mapped_column(String(16))
    invited_by_profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The membership the acceptance created (or restored).
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id"))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuthSession(Base):
    """A login. Both tokens name it; revoking it (logout) invalidates them at once."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class RateLimitHit(Base):
    """One counted event (a failed login…) under a key, kept for the length of its window."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_key_created_at", "key", "created_at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def display_name(user: Any) -> str:
    """How e-mails name a user (a ``User`` or a record with its name and e-mail columns):
    first and last name, else the address."""
    return " ".join(p for p in (user.first_name, user.last_name) if p) or str(user.email)
