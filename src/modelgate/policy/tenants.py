"""Who a virtual key belongs to, without asking the database on every request.

:class:`KeyCache` holds every key and team in memory, indexed by the key's digest, and
polls the store every ``key_refresh_seconds`` for the rows changed since the newest change
it has seen (less a margin for clocks that differ between instances). So a key created,
revoked, rotated, quarantined or changed on any instance takes effect on every other one
within that delay (two seconds by default), and the request path makes no query at all.
An instance that changes a key itself (a quarantine) updates its own cache at once.

:class:`TenantAuthenticator` accepts a virtual key found in the cache, or else the master
key; a revoked, expired or unknown key is refused as a bad key (401 in each protocol's
words), a quarantined one as forbidden (403 ``key_quarantined``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from modelgate.errors import AuthenticationFailed, PermissionDenied
from modelgate.periodic import Periodic
from modelgate.policy.auth import MasterKeyAuthenticator, Principal
from modelgate.policy.keys import digest, is_virtual
from modelgate.store import KeyRecord, TeamRecord, TenantStore

log = logging.getLogger("modelgate.tenancy")

#: How far back each poll looks before the newest change it saw (instances' clocks differ).
CLOCK_MARGIN = timedelta(seconds=5)


class KeyCache:
    def __init__(self, tenants: TenantStore, refresh_seconds: float) -> None:
        self.tenants = tenants
        self.refresh_seconds = refresh_seconds
        self._by_digest: dict[str, KeyRecord] = {}
        self._digest_of: dict[str, str] = {}  # key id → its current digest (rotation drops the old)
        self._teams: dict[str, TeamRecord] = {}
        self._seen: datetime | None = None
        self._poll = Periodic(self.refresh, refresh_seconds, what="refresh the key cache", log=log)

    def find(self, key_digest: str) -> KeyRecord | None:
        return self._by_digest.get(key_digest)

    def team(self, team_id: str | None) -> TeamRecord | None:
        return self._teams.get(team_id) if team_id is not None else None

    def put_key(self, key: KeyRecord) -> None:
        old = self._digest_of.get(key.id)
        if old is not None and old != key.key_hash:
            self._by_digest.pop(old, None)
        self._by_digest[key.key_hash] = key
        self._digest_of[key.id] = key.key_hash
        self._saw(key.updated_at)

    def put_team(self, team: TeamRecord) -> None:
        self._teams[team.id] = team
        self._saw(team.updated_at)

    def _saw(self, when: datetime) -> None:
        if self._seen is None or when > self._seen:
            self._seen = when

    async def load(self) -> None:
        """Every key and team (at start)."""
        for team in await self.tenants.list_teams():
            self.put_team(team)
        for key in await self.tenants.list_keys():
            self.put_key(key)

    async def refresh(self) -> None:
        """The keys and teams changed since the newest change seen (less the clock margin)."""
        since = (self._seen or datetime.fromtimestamp(0, UTC)) - CLOCK_MARGIN
        for team in await self.tenants.teams_changed_since(since):
            self.put_team(team)
        for key in await self.tenants.keys_changed_since(since):
            self.put_key(key)

    def start(self) -> None:
        self._poll.start()

    async def close(self) -> None:
        await self._poll.close()


class TenantAuthenticator:
    """Virtual keys from the cache, else the master key."""

    def __init__(self, master: MasterKeyAuthenticator, cache: KeyCache, clock: Callable[[], float] = time.time) -> None:
        self.master = master
        self.cache = cache
        self.clock = clock

    async def authenticate(self, credentials: list[str]) -> Principal:
        for candidate in credentials:
            if is_virtual(candidate):
                return self.principal(candidate)
        return await self.master.authenticate(credentials)

    def principal(self, secret: str) -> Principal:
        key = self.cache.find(digest(secret))  # found by its digest: the secret is never compared
        if key is None:
            raise AuthenticationFailed("invalid x-api-key")
        if key.revoked_at is not None:
            raise AuthenticationFailed("this API key has been revoked")
        if key.expires_at is not None and key.expires_at.timestamp() <= self.clock():
            raise AuthenticationFailed("this API key has expired")
        if key.quarantined_at is not None:
            reason = f" ({key.quarantine_reason})" if key.quarantine_reason else ""
            raise PermissionDenied(
                f"API key {key.name!r} is quarantined{reason}: an administrator must release it",
                code="key_quarantined",
                policy=True,
            )
        return Principal(key.id, "virtual_key", key, self.cache.team(key.team_id))
