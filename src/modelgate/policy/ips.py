"""Client IP rules of a virtual key: an allow-list, a limit on distinct addresses, and
quarantine when a key turns up at too many addresses (a leaked key, most likely).

The client IP is the socket's peer, unless that peer is one of the operator's trusted
proxies: then it is the last address of ``X-Forwarded-For`` that is not a trusted proxy
(addresses a client writes itself come first in that header, so they are never believed).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache

from modelgate.counters import Counters, window
from modelgate.errors import PermissionDenied
from modelgate.store import KeyRecord

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: The key metadata entry that numbers its quarantines for IP abuse (the epoch second of the last).
QUARANTINE_EPOCH = "modelgate_ip_quarantine"
#: The window of a key's distinct-IP limit when it names none.
DEFAULT_IP_WINDOW = "24h"


@lru_cache(maxsize=1024)
def _networks(specs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(spec, strict=False) for spec in specs)


def _within(ip: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str | None:
    """The client's address (see the module docstring)."""
    if not trusted or peer is None or forwarded_for is None or not _within(peer, _networks(trusted)):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _within(hop, _networks(trusted)):
            return hop
    return hops[0] if hops else peer


class IPRules:
    def __init__(
        self,
        counters: Counters,
        quarantine_ips: int | None,
        quarantine: Callable[[KeyRecord, str], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = counters
        self.quarantine_ips = quarantine_ips
        self.quarantine = quarantine
        self.clock = clock

    def applies(self, key: KeyRecord) -> bool:
        return bool(key.ip_allow) or key.ip_limit is not None or self.quarantine_ips is not None

    async def check(self, key: KeyRecord, ip: str | None) -> None:
        """Refuse (403) a call from an address the key may not use."""
        address = ip or "unknown"
        if key.ip_allow and not (ip is not None and _within(ip, _networks(tuple(key.ip_allow)))):
            raise PermissionDenied(
                f"API key {key.name!r} may not be used from {address}", code="ip_not_allowed", policy=True
            )
        win = window(key.ip_window or DEFAULT_IP_WINDOW)
        now = self.clock()
        if self.quarantine_ips is not None:
            # Every address counts here, refused or not: that is the sign of a leaked key. The
            # count starts again after each quarantine (its epoch is kept in the key's metadata),
            # so a key an admin released is not quarantined again by the addresses that caused it.
            epoch = key.metadata.get(QUARANTINE_EPOCH, 0)
            scope = f"key:{key.id}:ips-seen:{epoch}"
            _, seen = await self.counters.touch_member(scope, address, win, 2**31, now)
            if seen >= self.quarantine_ips:
                reason = f"used from {seen} addresses within {win.name}"
                await self.quarantine(key, reason)
                raise PermissionDenied(
                    f"API key {key.name!r} is quarantined ({reason}): an administrator must release it",
                    code="key_quarantined",
                    policy=True,
                )
        if key.ip_limit is not None:
            admitted, _ = await self.counters.touch_member(f"key:{key.id}:ips", address, win, key.ip_limit, now)
            if not admitted:
                raise PermissionDenied(
                    f"API key {key.name!r} reached its limit of {key.ip_limit} client addresses within "
                    f"{win.name} ({address} would be one more)",
                    code="ip_limit_reached",
                    policy=True,
                )
