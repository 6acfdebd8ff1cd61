"""register: what the printable register needs beyond the journal (issue 11, items 5-7)

Revision ID: 20261207_0006
Revises: 20261207_0005
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0006"
down_revision: str | None = "20261207_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The check that raised an anomaly: the register lists it under that check.
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "raised_by_intervention_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_index(
            batch_op.f("ix_anomalies_raised_by_intervention_id"),
            ["raised_by_intervention_id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_anomalies_raised_by_intervention_id_interventions"),
            "interventions",
            ["raised_by_intervention_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_anomalies_raised_by_intervention_id_interventions"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_anomalies_raised_by_intervention_id"))
        batch_op.drop_column("raised_by_intervention_id")
