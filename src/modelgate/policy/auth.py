"""Authentication: who is calling.

Front doors extract the candidate credentials from their own headers
(``x-api-key``, ``Authorization: Bearer``, ``x-goog-api-key``, ``?key=``) and
hand them to an :class:`Authenticator`, which knows nothing of HTTP. Virtual keys
are another authenticator behind the same interface (``policy.tenants``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from modelgate.errors import AuthenticationFailed
from modelgate.store.records import KeyRecord, TeamRecord


@dataclass(slots=True, frozen=True)
class Principal:
    """An authenticated caller: the master key, or a virtual key (with its team, if any)."""

    id: str
    kind: str  # "master" or "virtual_key"
    key: KeyRecord | None = None
    team: TeamRecord | None = None


class Authenticator(Protocol):
    async def authenticate(self, credentials: list[str]) -> Principal: ...


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class MasterKeyAuthenticator:
    """Accepts the one master key; compares digests in constant time."""

    def __init__(self, master_key: str) -> None:
        self._digest = _digest(master_key)
        self._principal = Principal(id="master", kind="master")

    async def authenticate(self, credentials: list[str]) -> Principal:
        if not credentials:
            raise AuthenticationFailed("missing API key: send it as x-api-key or Authorization: Bearer")
        for candidate in credentials:
            if hmac.compare_digest(_digest(candidate), self._digest):
                return self._principal
        raise AuthenticationFailed("invalid x-api-key")


def bearer(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header."""
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None
