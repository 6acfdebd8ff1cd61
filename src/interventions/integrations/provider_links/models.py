"""One provider link: a token (kept only as its SHA-256) for one intervention and its contact."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from interventions.db import ID, Base, UTCDateTime, utcnow


class ProviderLink(Base):
    __tablename__ = "provider_links"
    __table_args__ = (
        Index("ix_provider_links_org_intervention", "organization_id", "intervention_id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    intervention_id: Mapped[int] = mapped_column(ForeignKey("interventions.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("company_contacts.id"))
    # SHA-256 (hex) of the token: the token itself is shown once, never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
