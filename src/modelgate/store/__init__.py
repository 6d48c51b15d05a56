"""The tenancy store: teams, virtual keys, per-application endpoints, the usage ledger and the
request log, on SQLite or PostgreSQL.

SQLAlchemy Core (async) over one schema (``schema.py``) that Alembic migrations
create (``migrations/``, applied by ``migrate.py``); repositories return frozen
records (``records.py``) and know nothing of HTTP or policy.
"""

from modelgate.store.database import Database, default_url, normalize_url
from modelgate.store.endpoints import EndpointStore
from modelgate.store.errors import StoreConflict, StoreError, StoreNotFound
from modelgate.store.ledger import LedgerStore
from modelgate.store.migrate import current_revision, head_revision, upgrade, upgrade_database, upgrade_sync
from modelgate.store.records import (
    BUDGET_WINDOWS,
    BodyRecord,
    Budget,
    BudgetWindow,
    EndpointChanges,
    EndpointRecord,
    KeyChanges,
    KeyRecord,
    LedgerRow,
    RequestRecord,
    SessionSummary,
    Spend,
    SpendBucket,
    TeamChanges,
    TeamRecord,
    UsageGroup,
    UsageGroupBy,
)
from modelgate.store.requests import RequestStore
from modelgate.store.tenants import TenantStore
from modelgate.store.users import UserRecord, UserStore

__all__ = [
    "BUDGET_WINDOWS",
    "BodyRecord",
    "Budget",
    "BudgetWindow",
    "Database",
    "EndpointChanges",
    "EndpointRecord",
    "EndpointStore",
    "KeyChanges",
    "KeyRecord",
    "LedgerRow",
    "LedgerStore",
    "RequestRecord",
    "RequestStore",
    "SessionSummary",
    "Spend",
    "SpendBucket",
    "StoreConflict",
    "StoreError",
    "StoreNotFound",
    "TeamChanges",
    "TeamRecord",
    "TenantStore",
    "UsageGroup",
    "UsageGroupBy",
    "UserRecord",
    "UserStore",
    "current_revision",
    "default_url",
    "head_revision",
    "normalize_url",
    "upgrade",
    "upgrade_database",
    "upgrade_sync",
]
