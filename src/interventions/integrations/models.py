"""Calendar feeds: a secret URL per subject (a user, a site or a company contact)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from interventions.db import ID, Base, UTCDateTime, utcnow


class CalendarFeed(Base):
    """The organisation's feed of the interventions of one subject, read at
    ``/integrations/v1/calendar/{token}.ics``.

    Only a SHA-256 of the token is kept: the token is shown once, in the feed's URL, when it
    is created or rotated. A rotation replaces it (the old URL stops working); a revoked feed
    (``revoked_at``) answers nothing any more. ``last_used_at`` is kept to the minute.
    """

    __tablename__ = "calendar_feeds"
    __table_args__ = (
        CheckConstraint("scope IN ('user', 'site', 'contact')", name="scope"),
        # Exactly the subject of its scope.
        CheckConstraint(
            "(scope = 'user' AND profile_id IS NOT NULL AND site_id IS NULL"
            " AND company_contact_id IS NULL)"
            " OR (scope = 'site' AND site_id IS NOT NULL AND profile_id IS NULL"
            " AND company_contact_id IS NULL)"
            " OR (scope = 'contact' AND company_contact_id IS NOT NULL AND profile_id IS NULL"
            " AND site_id IS NULL)",
            name="subject",
        ),
        Index("ix_calendar_feeds_organization_id", "organization_id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    scope: Mapped[str] = mapped_column(String(16))
    # The subject: the user's membership (``user``), a site, or a company contact.
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    company_contact_id: Mapped[int | None] = mapped_column(ForeignKey("company_contacts.id"))
    name: Mapped[str] = mapped_column(String(250))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
