"""overdue interventions and provider links (issue 12, items 5 and 7)

- ``interventions.overdue_notified_at``: when the overdue round marked the intervention
  overdue and queued its e-mails (once per overdue spell).
- ``organizations.auto_accept_after_days``: executed interventions not verified within this
  many days are accepted automatically; null (the default) never.
- ``provider_links``: a token (its SHA-256) per intervention and assigned contact, with its
  expiry and revocation.

Revision ID: 20261207_0010
Revises: 20261207_0009
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0010"
down_revision: str | None = "20261207_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "interventions",
        sa.Column("overdue_notified_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("organizations", sa.Column("auto_accept_after_days", sa.Integer(), nullable=True))
    op.create_table(
        "provider_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("intervention_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_user_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["company_contacts.id"],
            name=op.f("fk_provider_links_contact_id_company_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_provider_links_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_provider_links_intervention_id_interventions"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_provider_links_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_provider_links_token_hash")),
    )
    op.create_index(
        "ix_provider_links_org_intervention",
        "provider_links",
        ["organization_id", "intervention_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_provider_links_org_intervention", table_name="provider_links")
    op.drop_table("provider_links")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("auto_accept_after_days")
    with op.batch_alter_table("interventions") as batch:
        batch.drop_column("overdue_notified_at")
