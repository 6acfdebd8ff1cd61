"""Reference data: organisations and what they own (sites, rules, providers, anomalies…)."""

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


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Executed interventions not verified within this many days are accepted by the service
    # (``interventions/overdue.py``); none when null.
    auto_accept_after_days: Mapped[int | None] = mapped_column(Integer)


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(250))
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Rule(Base):
    """A regulatory obligation: type 1 check/maintenance, type 2 training."""

    __tablename__ = "rules"
    __table_args__ = (CheckConstraint("type IN (1, 2)", name="type"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(250))
    type: Mapped[int] = mapped_column(SmallInteger)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SiteRule(Base):
    """A rule applied to a site."""

    __tablename__ = "site_rules"
    __table_args__ = (UniqueConstraint("site_id", "rule_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id"), index=True)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Company(Base):
    """A provider: type 1 verification body, 2 works/maintenance, 3 training body."""

    __tablename__ = "companies"
    __table_args__ = (CheckConstraint("type IN (1, 2, 3)", name="type"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(250))
    type: Mapped[int] = mapped_column(SmallInteger)
    email: Mapped[str | None] = mapped_column(String(250))
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CompanyContact(Base):
    __tablename__ = "company_contacts"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(250))
    email: Mapped[str | None] = mapped_column(String(250))
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Routine(Base):
    """A plan over site rules, repeated by an RFC 5545 RRULE."""

    __tablename__ = "routines"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(250))
    rrule: Mapped[str | None] = mapped_column(String(500))
    assigned_profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id"))
    assigned_company_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("company_contacts.id")
    )
    auto_create_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # First occurrence of the RRULE (its DTSTART); each occurrence lasts duration_minutes.
    dtstart: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer, default=120, server_default="120")
    # How far ahead the worker creates the occurrences' interventions.
    horizon_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RoutineSiteRule(Base):
    __tablename__ = "routine_site_rules"

    routine_id: Mapped[int] = mapped_column(
        ForeignKey("routines.id", ondelete="CASCADE"), primary_key=True
    )
    site_rule_id: Mapped[int] = mapped_column(ForeignKey("site_rules.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)


class Anomaly(Base):
    """Found on a site by a check. Status 0 open, 1 in repair, 2 resolved."""

    __tablename__ = "anomalies"
    __table_args__ = (
        CheckConstraint("risk BETWEEN 0 AND 3", name="risk"),
        CheckConstraint("status IN (0, 1, 2)", name="status"),
        Index("ix_anomalies_organization_id_status", "organization_id", "status"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    title: Mapped[str] = mapped_column(String(250))
    description: Mapped[str | None] = mapped_column(Text)
    risk: Mapped[int] = mapped_column(SmallInteger, default=0)
    status: Mapped[int] = mapped_column(SmallInteger, default=0)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The check that found it (the register prints it among that check's observations).
    raised_by_intervention_id: Mapped[int | None] = mapped_column(
        ForeignKey("interventions.id"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
