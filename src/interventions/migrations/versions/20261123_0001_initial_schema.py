"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 17:02:56.152953+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_hits")),
    )
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rate_limit_hits_key_created_at", ["key", "created_at"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=250), nullable=False),
        sa.Column("password_hash", sa.String(length=250), nullable=False),
        sa.Column("first_name", sa.String(length=250), nullable=True),
        sa.Column("last_name", sa.String(length=250), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "companies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("email", sa.String(length=250), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("type IN (1, 2, 3)", name=op.f("ck_companies_type")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_companies_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
    )
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_companies_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "profiles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'manager', 'viewer')", name=op.f("ck_profiles_role")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_profiles_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_profiles_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
        sa.UniqueConstraint(
            "user_id", "organization_id", name=op.f("uq_profiles_user_id_organization_id")
        ),
    )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profiles_organization_id_role", ["organization_id", "role"], unique=False
        )

    op.create_table(
        "rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("type IN (1, 2)", name=op.f("ck_rules_type")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_rules_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
    )
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rules_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "sites",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sites_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sites_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "stored_files",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column(
            "created_by_user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_stored_files_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_stored_files_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_files")),
    )
    with op.batch_alter_table("stored_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stored_files_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "anomalies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("title", sa.String(length=250), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("risk", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "resolved_by_user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("risk BETWEEN 0 AND 3", name=op.f("ck_anomalies_risk")),
        sa.CheckConstraint("status IN (0, 1, 2)", name=op.f("ck_anomalies_status")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_anomalies_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_user_id"],
            ["users.id"],
            name=op.f("fk_anomalies_resolved_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_anomalies_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_anomalies_organization_id_status", ["organization_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_anomalies_site_id"), ["site_id"], unique=False)

    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_auth_sessions_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_auth_sessions_profile_id_profiles")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_auth_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "company_contacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("email", sa.String(length=250), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_company_contacts_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_company_contacts_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_contacts")),
    )
    with op.batch_alter_table("company_contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_company_contacts_company_id"), ["company_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_company_contacts_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "site_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_site_rules_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.id"], name=op.f("fk_site_rules_rule_id_rules")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_site_rules_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_rules")),
        sa.UniqueConstraint("site_id", "rule_id", name=op.f("uq_site_rules_site_id_rule_id")),
    )
    with op.batch_alter_table("site_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_site_rules_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_site_rules_rule_id"), ["rule_id"], unique=False)

    op.create_table(
        "routines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("rrule", sa.String(length=500), nullable=True),
        sa.Column(
            "assigned_profile_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "assigned_company_contact_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("auto_create_enabled", sa.Boolean(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_company_contact_id"],
            ["company_contacts.id"],
            name=op.f("fk_routines_assigned_company_contact_id_company_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_profile_id"],
            ["profiles.id"],
            name=op.f("fk_routines_assigned_profile_id_profiles"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_routines_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routines")),
    )
    with op.batch_alter_table("routines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_routines_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "interventions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("creation_status", sa.SmallInteger(), nullable=False),
        sa.Column("check_type", sa.SmallInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("code_pin", sa.Integer(), nullable=False),
        sa.Column("auto_created", sa.Boolean(), nullable=False),
        sa.Column("scheduled_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scheduled_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_name", sa.String(length=501), nullable=True),
        sa.Column("provider_email", sa.String(length=250), nullable=True),
        sa.Column("provider_action_comment", sa.Text(), nullable=True),
        sa.Column("provider_general_comment", sa.Text(), nullable=True),
        sa.Column(
            "assigned_company_contact_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "assigned_profile_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("signature_file_id", sa.String(length=64), nullable=True),
        sa.Column(
            "verified_by_user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.Column("attendee_count", sa.Integer(), nullable=True),
        sa.Column(
            "routine_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "created_by_user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("negotiation_end_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancellation_reason", sa.Text(), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "check_type IS NULL OR check_type IN (1, 2)", name=op.f("ck_interventions_check_type")
        ),
        sa.CheckConstraint(
            "code_pin BETWEEN 100000 AND 999999", name=op.f("ck_interventions_code_pin")
        ),
        sa.CheckConstraint(
            "creation_status IN (0, 1, 2)", name=op.f("ck_interventions_creation_status")
        ),
        sa.CheckConstraint("status BETWEEN 1 AND 7", name=op.f("ck_interventions_status")),
        sa.CheckConstraint("type IN (1, 2, 3)", name=op.f("ck_interventions_type")),
        sa.ForeignKeyConstraint(
            ["assigned_company_contact_id"],
            ["company_contacts.id"],
            name=op.f("fk_interventions_assigned_company_contact_id_company_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_profile_id"],
            ["profiles.id"],
            name=op.f("fk_interventions_assigned_profile_id_profiles"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_interventions_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_interventions_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_interventions_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["routine_id"], ["routines.id"], name=op.f("fk_interventions_routine_id_routines")
        ),
        sa.ForeignKeyConstraint(
            ["signature_file_id"],
            ["stored_files.id"],
            name=op.f("fk_interventions_signature_file_id_stored_files"),
        ),
        sa.ForeignKeyConstraint(
            ["verified_by_user_id"],
            ["users.id"],
            name=op.f("fk_interventions_verified_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interventions")),
    )
    with op.batch_alter_table("interventions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interventions_org_scheduled_start",
            ["organization_id", "scheduled_start"],
            unique=False,
        )
        batch_op.create_index(
            "ix_interventions_org_status", ["organization_id", "status"], unique=False
        )
        batch_op.create_index("ix_interventions_routine_id", ["routine_id"], unique=False)

    op.create_table(
        "routine_site_rules",
        sa.Column(
            "routine_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "site_rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_routine_site_rules_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["routine_id"],
            ["routines.id"],
            name=op.f("fk_routine_site_rules_routine_id_routines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_rule_id"],
            ["site_rules.id"],
            name=op.f("fk_routine_site_rules_site_rule_id_site_rules"),
        ),
        sa.PrimaryKeyConstraint("routine_id", "site_rule_id", name=op.f("pk_routine_site_rules")),
    )
    with op.batch_alter_table("routine_site_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_routine_site_rules_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "email_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "intervention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("recipient", sa.String(length=250), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_email_outbox_intervention_id_interventions"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_email_outbox_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_email_outbox_message_id")),
    )
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_outbox_intervention_id"), ["intervention_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_email_outbox_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_email_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "intervention_anomalies",
        sa.Column(
            "intervention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "anomaly_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["anomaly_id"],
            ["anomalies.id"],
            name=op.f("fk_intervention_anomalies_anomaly_id_anomalies"),
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_intervention_anomalies_intervention_id_interventions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_intervention_anomalies_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint(
            "intervention_id", "anomaly_id", name=op.f("pk_intervention_anomalies")
        ),
    )
    with op.batch_alter_table("intervention_anomalies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intervention_anomalies_anomaly_id"), ["anomaly_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_intervention_anomalies_organization_id"),
            ["organization_id"],
            unique=False,
        )

    op.create_table(
        "intervention_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "intervention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_intervention_history_intervention_id_interventions"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_intervention_history_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_intervention_history_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_history")),
    )
    with op.batch_alter_table("intervention_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intervention_history_intervention_id"), ["intervention_id"], unique=False
        )

    op.create_table(
        "intervention_rules",
        sa.Column(
            "intervention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_intervention_rules_intervention_id_interventions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_intervention_rules_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.id"], name=op.f("fk_intervention_rules_rule_id_rules")
        ),
        sa.PrimaryKeyConstraint("intervention_id", "rule_id", name=op.f("pk_intervention_rules")),
    )
    with op.batch_alter_table("intervention_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intervention_rules_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_intervention_rules_rule_id"), ["rule_id"], unique=False
        )

    op.create_table(
        "intervention_site_rules",
        sa.Column(
            "intervention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "site_rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_intervention_site_rules_intervention_id_interventions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_intervention_site_rules_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["site_rule_id"],
            ["site_rules.id"],
            name=op.f("fk_intervention_site_rules_site_rule_id_site_rules"),
        ),
        sa.PrimaryKeyConstraint(
            "intervention_id", "site_rule_id", name=op.f("pk_intervention_site_rules")
        ),
    )
    with op.batch_alter_table("intervention_site_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intervention_site_rules_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_intervention_site_rules_site_rule_id"), ["site_rule_id"], unique=False
        )

    op.create_table(
        "intervention_sites",
        sa.Column(
            "intervention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_intervention_sites_intervention_id_interventions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_intervention_sites_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_intervention_sites_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("intervention_id", "site_id", name=op.f("pk_intervention_sites")),
    )
    with op.batch_alter_table("intervention_sites", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intervention_sites_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_intervention_sites_site_id"), ["site_id"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column(
            "intervention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_notifications_intervention_id_interventions"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notifications_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_user_org_created",
            ["user_id", "organization_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_user_org_created")

    op.drop_table("notifications")
    with op.batch_alter_table("intervention_sites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intervention_sites_site_id"))
        batch_op.drop_index(batch_op.f("ix_intervention_sites_organization_id"))

    op.drop_table("intervention_sites")
    with op.batch_alter_table("intervention_site_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intervention_site_rules_site_rule_id"))
        batch_op.drop_index(batch_op.f("ix_intervention_site_rules_organization_id"))

    op.drop_table("intervention_site_rules")
    with op.batch_alter_table("intervention_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intervention_rules_rule_id"))
        batch_op.drop_index(batch_op.f("ix_intervention_rules_organization_id"))

    op.drop_table("intervention_rules")
    with op.batch_alter_table("intervention_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intervention_history_intervention_id"))

    op.drop_table("intervention_history")
    with op.batch_alter_table("intervention_anomalies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intervention_anomalies_organization_id"))
        batch_op.drop_index(batch_op.f("ix_intervention_anomalies_anomaly_id"))

    op.drop_table("intervention_anomalies")
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_email_outbox_status_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_email_outbox_organization_id"))
        batch_op.drop_index(batch_op.f("ix_email_outbox_intervention_id"))

    op.drop_table("email_outbox")
    with op.batch_alter_table("routine_site_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routine_site_rules_organization_id"))

    op.drop_table("routine_site_rules")
    with op.batch_alter_table("interventions", schema=None) as batch_op:
        batch_op.drop_index("ix_interventions_routine_id")
        batch_op.drop_index("ix_interventions_org_status")
        batch_op.drop_index("ix_interventions_org_scheduled_start")

    op.drop_table("interventions")
    with op.batch_alter_table("routines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routines_organization_id"))

    op.drop_table("routines")
    with op.batch_alter_table("site_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_site_rules_rule_id"))
        batch_op.drop_index(batch_op.f("ix_site_rules_organization_id"))

    op.drop_table("site_rules")
    with op.batch_alter_table("company_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_company_contacts_organization_id"))
        batch_op.drop_index(batch_op.f("ix_company_contacts_company_id"))

    op.drop_table("company_contacts")
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_sessions_user_id"))

    op.drop_table("auth_sessions")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anomalies_site_id"))
        batch_op.drop_index("ix_anomalies_organization_id_status")

    op.drop_table("anomalies")
    with op.batch_alter_table("stored_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_files_organization_id"))

    op.drop_table("stored_files")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sites_organization_id"))

    op.drop_table("sites")
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rules_organization_id"))

    op.drop_table("rules")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_organization_id_role")

    op.drop_table("profiles")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_companies_organization_id"))

    op.drop_table("companies")
    op.drop_table("users")
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_hits_key_created_at")

    op.drop_table("rate_limit_hits")
    op.drop_table("organizations")
