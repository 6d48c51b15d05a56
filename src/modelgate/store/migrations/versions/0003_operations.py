"""Operations: the request log, opt-in bodies, per-application endpoints.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

``requests`` holds one record per request for operators (pruned after a retention);
``request_bodies`` the bodies of the keys and endpoints that opt in (``log_bodies``);
``endpoints`` the per-application base URLs, whose id the ledger now carries too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(40)
NAME = sa.String(200)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("keys", sa.Column("log_bodies", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("ledger", sa.Column("endpoint_id", ID))
    op.create_index("ix_ledger_endpoint_id_at", "ledger", ["endpoint_id", "at"])

    op.create_table(
        "endpoints",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("keys", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("log_bodies", sa.Boolean, nullable=False, server_default=sa.false()),
        _when("disabled_at"),
        sa.Column("metadata", sa.JSON, nullable=False),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_endpoints"),
        sa.UniqueConstraint("name", name="uq_endpoints_name"),
    )
    op.create_index("ix_endpoints_updated_at", "endpoints", ["updated_at"])

    op.create_table(
        "requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=True),
        sa.Column("request_id", sa.Text, nullable=False),
        _when("at", nullable=False),
        sa.Column("key_id", ID),
        sa.Column("team_id", ID),
        sa.Column("endpoint_id", ID),
        sa.Column("session_id", sa.Text),
        sa.Column("door", sa.Text, nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("model", sa.Text),
        sa.Column("served_model", sa.Text),
        sa.Column("provider", sa.Text),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_type", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("stop_reason", sa.Text),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("ttft_ms", sa.Integer),
        *(sa.Column(f"{kind}_tokens", sa.Integer, nullable=False) for kind in TOKEN_KINDS),
        sa.Column("cost_usd", sa.Double, nullable=False),
        sa.Column("tool_calls", sa.Integer, nullable=False),
        sa.Column("user_agent", sa.Text),
        sa.Column("client_ip", sa.Text),
        sa.Column("attempts", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
    )
    op.create_index("ix_requests_key_id_at", "requests", ["key_id", "at"])
    op.create_index("ix_requests_endpoint_id_at", "requests", ["endpoint_id", "at"])
    op.create_index("ix_requests_session_id_at", "requests", ["session_id", "at"])
    op.create_index("ix_requests_at", "requests", ["at"])
    op.create_index("ix_requests_request_id", "requests", ["request_id"])

    op.create_table(
        "request_bodies",
        sa.Column("request_id", sa.Text, nullable=False),
        _when("at", nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("response", sa.Text),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_request_bodies"),
    )
    op.create_index("ix_request_bodies_at", "request_bodies", ["at"])


def downgrade() -> None:
    op.drop_table("request_bodies")
    op.drop_table("requests")
    op.drop_table("endpoints")
    op.drop_index("ix_ledger_endpoint_id_at", "ledger")
    with op.batch_alter_table("ledger") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("endpoint_id")
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("log_bodies")
