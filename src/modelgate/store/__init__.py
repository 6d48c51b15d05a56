"""The tenancy store: teams, virtual keys and the usage ledger, on SQLite or PostgreSQL.

SQLAlchemy Core (async) over one schema (``schema.py``) that Alembic migrations
create (``migrations/``, applied by ``migrate.py``); repositories return frozen
records (``records.py``) and know nothing of HTTP or policy.
"""
