"""Tenancy's moving parts, owned in one place by the application object.

The store (keys, teams, endpoints, ledger, request log: SQLite in the data directory by
default, PostgreSQL when configured), the counters (in process, or Redis), the key and
endpoint caches that spare the request path any query, the price book, the limiter, the
batched store writer and the request log's pruner. :meth:`Tenancy.start`
brings them up in order (an embedded SQLite store is migrated on the way; PostgreSQL must
be migrated with ``modelgate db upgrade``), :meth:`Tenancy.close` takes them down and
writes what the ledger still holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime, timedelta

from modelgate.accounting.cost import PriceBook
from modelgate.accounting.ledger import LedgerWriter
from modelgate.config import Config, RecordsConfig
from modelgate.counters import Counters, open_counters
from modelgate.periodic import Periodic
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
    RequestStore,
    TenantStore,
    current_revision,
    default_url,
    head_revision,
)
from modelgate.store.migrate import upgrade_database

log = logging.getLogger("modelgate.tenancy")

#: Seconds after start of the request log's first pruning.
FIRST_PRUNE_SECONDS = 60.0


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
        #: The request log (None when ``records.enabled`` is off) and its settings.
        self.records: RecordsConfig = config.records
        self.requests = RequestStore(self.database) if config.records.enabled else None
        self.writer = LedgerWriter(
            self.ledger, config.tenancy.ledger_flush_seconds, config.tenancy.ledger_batch, self.requests
        )
        #: Prunes the request log a minute after start (a gateway that restarts often still
        #: prunes; one that starts is not slowed), then every ``records.prune_interval_seconds``.
        self._pruner: Periodic | None = None
        if self.requests is not None and (
            config.records.retention_days is not None or config.records.bodies_retention_days is not None
        ):
            interval = config.records.prune_interval_seconds
            self._pruner = Periodic(
                self._prune,
                interval,
                what="prune the request log",
                log=log,
                first_delay=min(FIRST_PRUNE_SECONDS, interval),
            )
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
        if self._pruner is not None:
            self._pruner.start()

    async def prune(self, requests: RequestStore, now: datetime | None = None) -> tuple[int, int]:
        """Delete the records and bodies older than their retention (in batches); the counts deleted."""
        now = now or datetime.now(UTC)
        days, body_days = self.records.retention_days, self.records.bodies_retention_days
        if days is not None and body_days is not None:
            body_days = min(days, body_days)
        bodies = 0 if body_days is None else await requests.prune_bodies(now - timedelta(days=body_days))
        records = 0 if days is None else await requests.prune(now - timedelta(days=days))
        return records, bodies

    async def _prune(self) -> None:
        assert self.requests is not None
        records, bodies = await self.prune(self.requests)
        if records or bodies:
            log.info("pruned %d request records and %d bodies past their retention", records, bodies)

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
        if self._pruner is not None:
            await self._pruner.close()
        await self.settle_pending()
        await self.cache.close()
        await self.endpoints.close()
        await self.writer.close()
        await self.counters.close()
        await self.database.close()
