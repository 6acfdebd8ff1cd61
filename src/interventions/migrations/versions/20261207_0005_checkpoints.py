"""checkpoints: signed journal heads and the signing keys (issue 11, items 2-3)

Revision ID: 20261207_0005
Revises: 20261207_0004
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0005"
down_revision: str | None = "20261207_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "register_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_register_keys")),
    )
    op.create_table(
        "journal_checkpoints",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("timestamp_token", sa.Text(), nullable=True),
        sa.Column("tsa_url", sa.String(length=500), nullable=True),
        sa.Column("timestamp_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["register_keys.key_id"],
            name=op.f("fk_journal_checkpoints_key_id_register_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_journal_checkpoints_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_checkpoints")),
        sa.UniqueConstraint(
            "organization_id", "seq", name=op.f("uq_journal_checkpoints_organization_id_seq")
        ),
    )


def downgrade() -> None:
    op.drop_table("journal_checkpoints")
    op.drop_table("register_keys")
