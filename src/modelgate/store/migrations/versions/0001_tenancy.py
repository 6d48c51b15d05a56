"""Tenancy: teams, virtual keys and the usage ledger.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out rather than built from ``schema.metadata``: a migration must keep
creating what it created on the day it shipped, whatever the schema becomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(40)
NAME = sa.String(200)


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _limits() -> list[sa.Column[Any]]:
    return [
        sa.Column("budgets", sa.JSON, nullable=False),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("concurrency", sa.Integer),
    ]


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        *_limits(),
        sa.Column("metadata", sa.JSON, nullable=False),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("name", name="uq_teams_name"),
    )
    op.create_index("ix_teams_updated_at", "teams", ["updated_at"])

    op.create_table(
        "keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("team_id", ID),
        sa.Column("models", sa.JSON, nullable=False),
        _when("expires_at"),
        _when("revoked_at"),
        _when("quarantined_at"),
        sa.Column("quarantine_reason", sa.Text),
        *_limits(),
        sa.Column("max_tokens", sa.Integer),
        sa.Column("ip_allow", sa.JSON, nullable=False),
        sa.Column("ip_limit", sa.Integer),
        sa.Column("ip_window", sa.String(16)),
        sa.Column("metadata", sa.JSON, nullable=False),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_keys"),
        sa.UniqueConstraint("name", name="uq_keys_name"),
        sa.UniqueConstraint("key_hash", name="uq_keys_key_hash"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_keys_team_id_teams", ondelete="RESTRICT"),
    )
    op.create_index("ix_keys_updated_at", "keys", ["updated_at"])
    op.create_index("ix_keys_team_id", "keys", ["team_id"])

    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=True),
        sa.Column("request_id", sa.Text, nullable=False),
        _when("at", nullable=False),
        sa.Column("key_id", ID),
        sa.Column("team_id", ID),
        sa.Column("door", sa.Text, nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("served_model", sa.Text),
        sa.Column("provider", sa.Text),
        *(
            sa.Column(f"{kind}_tokens", sa.Integer, nullable=False)
            for kind in ("input", "output", "cache_read", "cache_write", "reasoning")
        ),
        sa.Column("cost_usd", sa.Double, nullable=False),
        sa.Column("credits", sa.Double, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger"),
    )
    op.create_index("ix_ledger_key_id_at", "ledger", ["key_id", "at"])
    op.create_index("ix_ledger_team_id_at", "ledger", ["team_id", "at"])
    op.create_index("ix_ledger_at", "ledger", ["at"])


def downgrade() -> None:
    op.drop_table("ledger")
    op.drop_table("keys")
    op.drop_table("teams")
