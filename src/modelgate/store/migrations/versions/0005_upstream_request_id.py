"""The upstream's request id on the request log, indexed.

On a passthrough answer the client sees the upstream's id (``request-id`` /
``x-request-id``), not the gateway's, and that is the id a user reports; the column
holds the last attempt's so an operator finds the record by either. The records written
before it are not backfilled from their attempts: an UPDATE of every row of a large log would
hold the upgrade, and they age out with the retention (their upstream ids stay in ``attempts``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("upstream_request_id", sa.Text(), nullable=True))
    op.create_index("ix_requests_upstream_request_id", "requests", ["upstream_request_id"])


def downgrade() -> None:
    op.drop_index("ix_requests_upstream_request_id", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("upstream_request_id")
