"""The tenancy tables, one ``MetaData`` for SQLite and PostgreSQL.

The migrations in ``migrations/versions`` create exactly these tables (a test
compares them); change both together. Constraints are named by a convention so
later migrations can refer to them by name on both dialects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every dialect.

    PostgreSQL's ``timestamptz`` keeps the instant itself; SQLite has no time zone
    type, so there the value is stored as naive UTC text (which also sorts and
    compares correctly) and tagged UTC when read. Naive input is refused rather
    than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where an aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

NAME_MAX: Final = 200
HINT_MAX: Final = 32
ID: Final = sa.String(40)
NAME: Final = sa.String(NAME_MAX)


def _limits() -> list[sa.Column[Any]]:
    """Budgets and request limits, which teams and keys both carry."""
    return [
        sa.Column("budgets", sa.JSON, nullable=False),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("concurrency", sa.Integer),
    ]


def _stamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
    ]


teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    *_limits(),
    *_stamps(),
)

keys = sa.Table(
    "keys",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(HINT_MAX), nullable=False),
    sa.Column("team_id", ID, sa.ForeignKey("teams.id", ondelete="RESTRICT"), index=True),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("quarantined_at", UTCDateTime),
    sa.Column("quarantine_reason", sa.Text),
    *_limits(),
    sa.Column("max_tokens", sa.Integer),
    sa.Column("ip_allow", sa.JSON, nullable=False),
    sa.Column("ip_limit", sa.Integer),
    sa.Column("ip_window", sa.String(16)),
    # Claude Code's warm-up calls answered by the gateway (when ``router.warmup`` is ``local``).
    sa.Column("intercept_warmup", sa.Boolean, nullable=False, server_default=sa.true()),
    # Request and answer bodies kept in ``request_bodies`` for this key's calls (opt-in).
    sa.Column("log_bodies", sa.Boolean, nullable=False, server_default=sa.false()),
    *_stamps(),
)

# The portal's administrators besides the master key: a name and a salted scrypt hash.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Per-application endpoints: ``/v1/<id>/<provider>`` base URLs that route like the plain ones
# but carry the endpoint's id into the ledger, the request records and the traces.
endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("keys", sa.JSON, nullable=False),  # key ids it accepts; empty accepts every key
    sa.Column("models", sa.JSON, nullable=False),  # names and patterns; empty allows every model
    sa.Column("log_bodies", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled_at", UTCDateTime),
    *_stamps(),
)

# The ledger's strings are unbounded: some come from clients (a model name, a Gemini path
# that carries it), and a batch must never fail on PostgreSQL for one long value.
ledger = sa.Table(
    "ledger",
    metadata,
    # SQLite autoincrements only an INTEGER primary key (the rowid); BIGINT elsewhere.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("key_id", ID),  # no foreign keys: the ledger is history and outlives what it names
    sa.Column("team_id", ID),
    sa.Column("door", sa.Text, nullable=False),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("served_model", sa.Text),
    sa.Column("provider", sa.Text),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cache_read_tokens", sa.Integer, nullable=False),
    sa.Column("cache_write_tokens", sa.Integer, nullable=False),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Double, nullable=False),
    sa.Column("credits", sa.Double, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("endpoint_id", ID),  # the per-application endpoint it came through, if any
    sa.Index(None, "key_id", "at"),
    sa.Index(None, "team_id", "at"),
    sa.Index(None, "at"),
    sa.Index(None, "endpoint_id", "at"),
)

# The request log: one record per request with what an operator needs to see why it ended as
# it did. Unlike the ledger (billing history, kept), it is pruned after ``retention``.
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
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
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cache_read_tokens", sa.Integer, nullable=False),
    sa.Column("cache_write_tokens", sa.Integer, nullable=False),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Double, nullable=False),
    sa.Column("tool_calls", sa.Integer, nullable=False),
    sa.Column("user_agent", sa.Text),
    sa.Column("client_ip", sa.Text),
    # Each upstream call: provider, model, key id (never the key), status, latency, error.
    sa.Column("attempts", sa.JSON, nullable=False),
    # The last attempt's upstream request id: the one the client saw on a passthrough answer
    # (its ``request-id`` header), so an operator finds the record by what a user reports.
    sa.Column("upstream_request_id", sa.Text),
    sa.Index(None, "key_id", "at"),
    sa.Index(None, "endpoint_id", "at"),
    sa.Index(None, "session_id", "at"),
    sa.Index(None, "at"),
    sa.Index(None, "request_id"),
    sa.Index(None, "upstream_request_id"),
)

# Bodies, for the keys and endpoints that opt in: capped, secrets redacted, pruned sooner.
request_bodies = sa.Table(
    "request_bodies",
    metadata,
    sa.Column("request_id", sa.Text, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("response", sa.Text),
    sa.Column("truncated", sa.Boolean, nullable=False),
)
