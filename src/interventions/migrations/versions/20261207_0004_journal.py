"""journal: the per-organisation hash-chained journal (issue 11, item 1)

Revision ID: 20261207_0004
Revises: 20261201_0003
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

revision: str = "20261207_0004"
down_revision: str | None = "20261201_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by its issue's work (see its docstring)


def downgrade() -> None:
    pass
