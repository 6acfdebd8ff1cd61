"""In-app notifications and the durable e-mail outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from interventions.db import ID, Base, UTCDateTime, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_org_created", "user_id", "organization_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    type: Mapped[str] = mapped_column(String(60))
    intervention_id: Mapped[int | None] = mapped_column(ForeignKey("interventions.id"))
    message: Mapped[str | None] = mapped_column(Text)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxEmail(Base):
    """An e-mail to send, written in the transaction of the change that caused it.

    ``message_id`` is fixed at creation so that a re-delivery after a crash carries the same
    Message-ID and the receiving side can drop the duplicate.
    """

    __tablename__ = "email_outbox"
    __table_args__ = (Index("ix_email_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    intervention_id: Mapped[int | None] = mapped_column(ForeignKey("interventions.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(250))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(60))
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    # pending → sent; failed attempts stay pending with a later next_attempt_at.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # A relay claims a row for a while (a lease) before sending it, so that several relays
    # never send the same row at once, and a crashed relay's rows come back after the lease.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
