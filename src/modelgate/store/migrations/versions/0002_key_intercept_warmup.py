"""Keys: ``intercept_warmup``, whether Claude Code's warm-up calls are answered locally.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

True for every existing key: warm-ups are answered by the gateway unless a key opts out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("keys", sa.Column("intercept_warmup", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("keys") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("intercept_warmup")
