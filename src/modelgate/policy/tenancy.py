"""Tenancy's moving parts, owned in one place by the application object.

The store (keys, teams, endpoints, ledger: SQLite in the data directory by default, PostgreSQL when
configured), the counters (in process, or Redis), the key and endpoint caches that spare the
request path any query, the price book, the limiter and the ledger writer. :meth:`Tenancy.start`
brings them up in order (an embedded SQLite store is migrated on the way; PostgreSQL must
be migrated with ``modelgate db upgrade``), :meth:`Tenancy.close` takes them down and
writes what the ledger still holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime

from modelgate.accounting.cost import PriceBook
from modelgate.accounting.ledger import LedgerWriter
from modelgate.config import Config
from modelgate.counters import Counters, open_counters
from modelgate.policy.auth import MasterKeyAuthenticator
from modelgate.policy.endpoints import EndpointCache
from modelgate.policy.ips import QUARANTINE_EPOCH, IPRules
from modelgate.policy.limits import Lease, Limiter
from modelgate.policy.tenants import KeyCache, TenantAuthenticator
from modelgate.store import (
    Database,
    EndpointStore,
    KeyRecord,
    LedgerStore,
    TenantStore,
    current_revision,
    default_url,
    head_revision,
)
from modelgate.store.migrate import upgrade_database

log = logging.getLogger("modelgate.tenancy")


class StoreNotReady(RuntimeError):
    """The configured database lacks the gateway's tables (or has older ones)."""


def store_url(config: Config) -> str:
    return config.server.database_url or default_url(config.server.data_dir)


class Tenancy:
    def __init__(self, config: Config, master_key: str) -> None:
        self.database = Database(store_url(config))
        self.tenants = TenantStore(self.database)
        self.ledger = LedgerStore(self.database)
        self.counters: Counters = open_counters(config.server.redis_url)
        self.cache = KeyCache(self.tenants, config.tenancy.key_refresh_seconds)
        #: Per-application endpoints (``/v1/<id>/<provider>``), in memory like the keys.
        self.endpoint_store = EndpointStore(self.database)
        self.endpoints = EndpointCache(self.endpoint_store, config.tenancy.key_refresh_seconds)
        self.prices = PriceBook(config.tenancy.credit_rate)
        self.limiter = Limiter(self.counters, self.prices, self.ledger)
        self.writer = LedgerWriter(self.ledger, config.tenancy.ledger_flush_seconds, config.tenancy.ledger_batch)
        self.authenticator = TenantAuthenticator(MasterKeyAuthenticator(master_key), self.cache)
        self.ips = IPRules(self.counters, config.tenancy.quarantine_ips, self.quarantine)
        self.trusted_proxies = tuple(config.tenancy.trusted_proxies)
        #: Leases to settle on the counters, off the request path, and the task that does it.
        self._releases: deque[tuple[Lease, float, int]] = deque()
        self._releaser: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.database.dialect == "sqlite":
            await upgrade_database(self.database)
        elif await current_revision(self.database) != head_revision():
            raise StoreNotReady("the database is not at the gateway's schema version: run `modelgate db upgrade` first")
        await self.cache.load()
        await self.endpoints.load()
        self.cache.start()
        self.endpoints.start()
        self.writer.start()

    async def refresh(self) -> None:
        """Both caches, at once (after an admin write on this instance)."""
        await self.cache.refresh()
        await self.endpoints.refresh()

    async def quarantine(self, key: KeyRecord, reason: str) -> None:
        """Quarantine ``key`` everywhere (the store) and here at once (the cache)."""
        now = datetime.now(UTC)
        metadata = {**key.metadata, QUARANTINE_EPOCH: int(now.timestamp())}  # the address count restarts
        record = await self.tenants.update_key(key.id, quarantined_at=now, quarantine_reason=reason, metadata=metadata)
        self.cache.put_key(record)

    def release(self, lease: Lease, cost: float, tokens: int) -> None:
        """Settle ``lease`` on the counters off the request path: queued for the one task that
        releases leases in turn (a task per request would cost more than the release itself)."""
        self._releases.append((lease, cost, tokens))
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.get_running_loop().create_task(self._release_queued())

    async def _release_queued(self) -> None:
        while self._releases:
            lease, cost, tokens = self._releases.popleft()
            try:
                await self.limiter.settle(lease, cost, tokens)
            except Exception:
                log.exception("could not settle lease %s on the counters", lease.id)

    async def settle_pending(self) -> None:
        """Wait for the settlements under way."""
        while self._releaser is not None and not self._releaser.done():
            await asyncio.shield(self._releaser)

    async def close(self) -> None:
        await self.settle_pending()
        await self.cache.close()
        await self.endpoints.close()
        await self.writer.close()
        await self.counters.close()
        await self.database.close()
