"""calendar feeds and the lifecycle endpoint (issue 12, items 3 and 6)

- ``calendar_feeds``: the organisation's secret feed URLs (``integrations.feeds``), each of one
  subject: a member's profile (scope ``user``), a site or a company contact. Only a SHA-256
  of the token is kept. The lifecycle endpoint needs no table.

Revision ID: 20261207_0007
Revises: 20261207_0006
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0007"
down_revision: str | None = "20261207_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Exactly the subject of its scope.
SUBJECT = (
    "(scope = 'user' AND profile_id IS NOT NULL AND site_id IS NULL"
    " AND company_contact_id IS NULL)"
    " OR (scope = 'site' AND site_id IS NOT NULL AND profile_id IS NULL"
    " AND company_contact_id IS NULL)"
    " OR (scope = 'contact' AND company_contact_id IS NOT NULL AND profile_id IS NULL"
    " AND site_id IS NULL)"
)


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("profile_id", ID, nullable=True),
        sa.Column("site_id", ID, nullable=True),
        sa.Column("company_contact_id", ID, nullable=True),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_profile_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(SUBJECT, name=op.f("ck_calendar_feeds_subject")),
        sa.CheckConstraint(
            "scope IN ('user', 'site', 'contact')", name=op.f("ck_calendar_feeds_scope")
        ),
        sa.ForeignKeyConstraint(
            ["company_contact_id"],
            ["company_contacts.id"],
            name=op.f("fk_calendar_feeds_company_contact_id_company_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_profile_id"],
            ["profiles.id"],
            name=op.f("fk_calendar_feeds_created_by_profile_id_profiles"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_calendar_feeds_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_calendar_feeds_profile_id_profiles")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_calendar_feeds_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feeds_token_hash")),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calendar_feeds_organization_id", ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_feeds_organization_id")
    op.drop_table("calendar_feeds")
