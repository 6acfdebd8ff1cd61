"""routine planning, relay leases, list indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:38:31.631550+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("interventions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("occurrence_start", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_interventions_assigned_profile_id", ["assigned_profile_id"], unique=False
        )
        batch_op.create_index("ix_interventions_company_id", ["company_id"], unique=False)
        batch_op.create_index(
            "ix_interventions_org_actual_start", ["organization_id", "actual_start"], unique=False
        )
        batch_op.create_index(
            "ix_interventions_org_type", ["organization_id", "type"], unique=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_interventions_routine_id_occurrence_start"),
            ["routine_id", "occurrence_start"],
        )

    with op.batch_alter_table("routines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dtstart", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("duration_minutes", sa.Integer(), nullable=False, server_default="120")
        )
        batch_op.add_column(
            sa.Column("horizon_days", sa.Integer(), nullable=False, server_default="30")
        )


def downgrade() -> None:
    with op.batch_alter_table("routines", schema=None) as batch_op:
        batch_op.drop_column("horizon_days")
        batch_op.drop_column("duration_minutes")
        batch_op.drop_column("dtstart")

    with op.batch_alter_table("interventions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_interventions_routine_id_occurrence_start"), type_="unique"
        )
        batch_op.drop_index("ix_interventions_org_type")
        batch_op.drop_index("ix_interventions_org_actual_start")
        batch_op.drop_index("ix_interventions_company_id")
        batch_op.drop_index("ix_interventions_assigned_profile_id")
        batch_op.drop_column("occurrence_start")

    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
