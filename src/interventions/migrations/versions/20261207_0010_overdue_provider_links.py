"""overdue interventions and provider links (issue 12, items 5 and 7)

Revision ID: 20261207_0010
Revises: 20261207_0009
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

revision: str = "20261207_0010"
down_revision: str | None = "20261207_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by its issue's work (see its docstring)


def downgrade() -> None:
    pass
