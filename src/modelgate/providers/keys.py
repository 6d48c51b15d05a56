"""Upstream API keys: a provider's pool, the key chosen for one attempt, and the keys at rest.

The key is picked by the chain when an attempt starts and handed to the provider with the
request, so that a retry can go out with another key. Only the key's ``id`` is ever
recorded or logged.

A key the upstream refuses is put to rest, for every request of the process (the pool
belongs to the provider), and the request moves on to the next key at once: a 429 rests
it for the upstream's ``retry-after`` (else ``cooldown``), a 401 or 403 takes it out for
``quarantine`` and says so in the log. The last key awake is never put to rest: its
refusals reach the requests as the upstream's own (retried by the router like any other
failure), rather than as a refusal the gateway made up. While no key rests, ``pick`` is one
``next()`` on a cycle, as cheap as a plain round robin.

Each rest the pool decides is reported to its ``listeners`` (:class:`~modelgate.routing.shared.RoutingEvents`:
the metrics, and Redis for a fleet), and rests other instances decided arrive through
:meth:`KeyPool.apply_rest`, naming the key by its :attr:`KeyPool.fingerprints` (a digest of
the provider and the secret, the same wherever the config lists the key). A remote rest may
put the last key awake to rest too: it is a fact about the upstream, and ``pick`` still
hands out a key when every key rests (the one whose rest ends first), so no refusal is ever
made up; ``rest`` still declines to rest the last key awake, so the request gets the
upstream's own answer.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelgate.errors import GatewayError, UpstreamHTTPError

if TYPE_CHECKING:
    from modelgate.routing.shared import RoutingEvents

log = logging.getLogger("modelgate.keys")

#: Seconds a key answered 429 rests when the upstream said no ``retry-after``.
DEFAULT_COOLDOWN = 30.0
#: Seconds a key answered 401/403 is taken out.
DEFAULT_QUARANTINE = 3600.0


@dataclass(slots=True, frozen=True)
class UpstreamKey:
    #: Stable and printable: ``{provider}#{index in the config}``.
    id: str
    secret: str = field(repr=False)


#: The reasons a key rests.
RATE_LIMITED = "rate_limited"  # 429
REFUSED = "refused"  # 401, 403


def key_fingerprint(provider: str, secret: str) -> str:
    """What names a key between instances: a digest of the provider and the secret (never the
    secret, nor the index, which two configs may list in another order)."""
    return hashlib.sha256(f"{provider}\0{secret}".encode()).hexdigest()[:16]


@dataclass(slots=True)
class _Rest:
    until: float
    #: ``rate_limited`` (429) or ``refused`` (401/403).
    reason: str
    #: Whether another instance decided it (learnt through the shared state).
    remote: bool = False


class KeyPool:
    """A provider's keys, handed out in turn, skipping those at rest."""

    def __init__(
        self,
        provider: str,
        secrets: Sequence[str],
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        quarantine: float = DEFAULT_QUARANTINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.keys = [UpstreamKey(f"{provider}#{i}", s) for i, s in enumerate(secrets)]
        self.cooldown = cooldown
        self.quarantine = quarantine
        self._clock = clock
        #: Told of each rest this pool decides (the metrics; the shared state of a fleet).
        self.listeners: list[RoutingEvents] = []
        #: Each key's fingerprint, by id (:func:`key_fingerprint`).
        self.fingerprints = {k.id: key_fingerprint(provider, k.secret) for k in self.keys}
        self._turn: Iterator[UpstreamKey] | None = itertools.cycle(self.keys) if self.keys else None
        #: Keys at rest, by id; empty on the happy path.
        self._resting: dict[str, _Rest] = {}

    def pick(self) -> UpstreamKey | None:
        """The next key awake, or None for a provider that needs none (a local server)."""
        if self._turn is None:
            return None
        key = next(self._turn)
        if not self._resting:
            return key
        return self._awake(key)

    def _awake(self, key: UpstreamKey) -> UpstreamKey:
        assert self._turn is not None
        now = self._clock()
        for _ in range(len(self.keys)):
            rest = self._resting.get(key.id)
            if rest is None:
                return key
            if rest.until <= now:
                del self._resting[key.id]
                return key
            key = next(self._turn)
        # every key rests (another instance rested the last one awake): the one back soonest
        return min(self.keys, key=lambda k: self._resting[k.id].until if k.id in self._resting else now)

    def rest(self, key_id: str | None, error: GatewayError) -> bool:
        """Put the key ``key_id`` to rest when ``error`` is the upstream refusing it (429, 401,
        403); True when it did, so that the request may go on with another key."""
        if key_id is None or not isinstance(error, UpstreamHTTPError) or all(k.id != key_id for k in self.keys):
            return False  # not one of the pool's (a client's own key, BYOK): its refusal is the answer
        status = error.status
        if status == 429:
            # at least a second: a key told to come back at once must not be picked again at once
            seconds = max(1.0, error.retry_after) if error.retry_after is not None else self.cooldown
            reason = RATE_LIMITED
        elif status in (401, 403):
            seconds, reason = self.quarantine, REFUSED
        else:
            return False
        now = self._clock()
        if not any(k.id != key_id and self._is_awake(k.id, now) for k in self.keys):
            return False  # the last key awake: the request retries it, or gets the refusal
        if reason == REFUSED:
            message = error.message
            log.warning("upstream key %s refused with %d (%s): out for %.0f s", key_id, status, message, seconds)
        self._resting[key_id] = _Rest(now + seconds, reason)
        for listener in self.listeners:
            listener.key_rested(self, key_id, reason, seconds)
        return True

    def apply_rest(self, fingerprint: str, reason: str, seconds: float) -> str | None:
        """Rest the key of ``fingerprint`` for ``seconds`` more, as another instance decided (never
        reported back). A rest this pool already holds for longer stays. The key's id, or None
        when no key of this pool has that fingerprint."""
        key_id = next((k for k, f in self.fingerprints.items() if f == fingerprint), None)
        if key_id is None or seconds <= 0:
            return None
        until = self._clock() + seconds
        held = self._resting.get(key_id)
        if held is None or held.until < until:
            self._resting[key_id] = _Rest(until, reason, remote=True)
            if reason == REFUSED:
                log.warning("upstream key %s refused on another instance: out for %.0f s", key_id, seconds)
        return key_id

    def own_rests(self) -> list[tuple[str, str, float]]:
        """The rests this pool decided that still run: (id, reason, seconds left), for the
        shared state to write again after Redis was away."""
        now = self._clock()
        return [
            (key_id, r.reason, r.until - now) for key_id, r in self._resting.items() if r.until > now and not r.remote
        ]

    def _is_awake(self, key_id: str, now: float) -> bool:
        rest = self._resting.get(key_id)
        return rest is None or rest.until <= now

    def state(self) -> list[dict[str, Any]]:
        """Each key's id and whether it rests, and why, for how long more (for operators)."""
        now = self._clock()
        out: list[dict[str, Any]] = []
        for key in self.keys:
            rest = self._resting.get(key.id)
            if rest is None or rest.until <= now:
                out.append({"id": key.id, "state": "ok"})
            else:
                entry = {"id": key.id, "state": rest.reason, "seconds_left": round(rest.until - now, 1)}
                if rest.remote:
                    entry["remote"] = True
                out.append(entry)
        return out
