"""Interventions, their links to sites / site rules / rules / anomalies, and their history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from interventions.db import ID, Base, UTCDateTime, utcnow


class Intervention(Base):
    __tablename__ = "interventions"
    __table_args__ = (
        CheckConstraint("type IN (1, 2, 3)", name="type"),
        CheckConstraint("status BETWEEN 1 AND 7", name="status"),
        CheckConstraint("creation_status IN (0, 1, 2)", name="creation_status"),
        CheckConstraint("check_type IS NULL OR check_type IN (1, 2)", name="check_type"),
        CheckConstraint("code_pin BETWEEN 100000 AND 999999", name="code_pin"),
        Index("ix_interventions_org_status", "organization_id", "status"),
        Index("ix_interventions_org_scheduled_start", "organization_id", "scheduled_start"),
        Index("ix_interventions_routine_id", "routine_id"),
        Index("ix_interventions_org_type", "organization_id", "type"),
        Index("ix_interventions_org_actual_start", "organization_id", "actual_start"),
        Index("ix_interventions_assigned_profile_id", "assigned_profile_id"),
        Index("ix_interventions_company_id", "company_id"),
        # One intervention per routine occurrence, whatever the number of workers.
        UniqueConstraint("routine_id", "occurrence_start"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    type: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[int] = mapped_column(SmallInteger)
    creation_status: Mapped[int] = mapped_column(SmallInteger)
    check_type: Mapped[int | None] = mapped_column(SmallInteger)
    description: Mapped[str | None] = mapped_column(Text)
    code_pin: Mapped[int] = mapped_column(Integer)
    auto_created: Mapped[bool] = mapped_column(Boolean, default=False)
    scheduled_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    scheduled_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    actual_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    actual_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    provider_name: Mapped[str | None] = mapped_column(String(501))
    provider_email: Mapped[str | None] = mapped_column(String(250))
    provider_action_comment: Mapped[str | None] = mapped_column(Text)
    provider_general_comment: Mapped[str | None] = mapped_column(Text)
    assigned_company_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("company_contacts.id")
    )
    assigned_profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    signature_file_id: Mapped[str | None] = mapped_column(ForeignKey("stored_files.id"))
    verified_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision_comment: Mapped[str | None] = mapped_column(Text)
    attendee_count: Mapped[int | None] = mapped_column(Integer)
    routine_id: Mapped[int | None] = mapped_column(ForeignKey("routines.id"))
    occurrence_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    negotiation_end_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancellation_reason: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # 1 when created, one more at every write (``repository.write``): what ETags and calendar
    # feeds' SEQUENCE are made of.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # When the overdue round (``overdue.py``) marked it overdue and queued its e-mails: once
    # per overdue spell; a re-planning after which it is not overdue clears it.
    overdue_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class InterventionSite(Base):
    __tablename__ = "intervention_sites"

    intervention_id: Mapped[int] = mapped_column(
        ForeignKey("interventions.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True, index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)


class InterventionSiteRule(Base):
    __tablename__ = "intervention_site_rules"

    intervention_id: Mapped[int] = mapped_column(
        ForeignKey("interventions.id", ondelete="CASCADE"), primary_key=True
    )
    site_rule_id: Mapped[int] = mapped_column(
        ForeignKey("site_rules.id"), primary_key=True, index=True
    )
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)


class InterventionRule(Base):
    __tablename__ = "intervention_rules"

    intervention_id: Mapped[int] = mapped_column(
        ForeignKey("interventions.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id"), primary_key=True, index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)


class InterventionAnomaly(Base):
    __tablename__ = "intervention_anomalies"

    intervention_id: Mapped[int] = mapped_column(
        ForeignKey("interventions.id", ondelete="CASCADE"), primary_key=True
    )
    anomaly_id: Mapped[int] = mapped_column(
        ForeignKey("anomalies.id"), primary_key=True, index=True
    )
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
