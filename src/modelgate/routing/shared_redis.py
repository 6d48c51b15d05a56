"""Key rests and open breakers shared by every instance on one Redis.

A change decided here (a key put to rest, a breaker opened or closed) is written off the
request path, by one writer task, in one round trip: the state under its own Redis key with
the rest's or the cool-off's remaining time as its expiry (``SET … PX``; a closing deletes
it), and an event on one channel. Every instance runs one subscriber task that applies the
other instances' events to its own pools and breakers, and that loads the state still in
Redis when it (re)connects, so an instance started late or cut off for a while catches up
(and writes again what it decided itself and still holds: it may have been decided while
Redis was away).
Its own events it ignores (each instance has a random origin id), and applied events are
never reported again: no echo.

Times cross processes as wall-clock epochs (``time.time()``), turned into seconds left on
receipt; the instances' clocks need only agree to well under a rest's length (NTP does).

Redis is never on the request path: if it is unreachable, every instance goes on routing
with its own state, logs it once, and retries the subscription with a growing backoff.

Layout, under the prefix (``mg:routing:``)::

    rest:{fingerprint}     JSON event of the rest (reason, wall-clock end), expires with it
    breaker:{digest}       JSON event of the open breaker (deployment, wall-clock end), expires with it
    events                 the channel: {"origin", "kind": rest|open|close, …}
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from modelgate.providers.keys import KeyPool
from modelgate.routing.health import DeploymentHealth
from modelgate.routing.shared import DeploymentId, ProcessRouting, deployment_id

log = logging.getLogger("modelgate.routing.shared")

DEFAULT_PREFIX = "mg:routing:"
#: Changes waiting for the writer beyond this are dropped (Redis is down or slow; the
#: instance keeps them locally in any case).
MAX_PENDING = 1000


#: TCP keepalive for the subscription, which only ever reads: a peer gone silent (a Redis
#: host lost, a NAT that dropped the flow) is noticed within about a minute, not hours.
_KEEPALIVE = {
    option: value
    for option, value in (
        (getattr(socket, "TCP_KEEPIDLE", None), 30),
        (getattr(socket, "TCP_KEEPINTVL", None), 10),
        (getattr(socket, "TCP_KEEPCNT", None), 3),
    )
    if option is not None
}


def breaker_key(deployment: DeploymentId) -> str:
    """The name of a deployment's breaker in Redis (model and upstream names may hold any character)."""
    return hashlib.sha256("\0".join(deployment).encode()).hexdigest()[:16]


class RedisRouting(ProcessRouting):
    """The shared state of one instance: its writer, its subscriber, and what they apply to."""

    shared = True

    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_PREFIX,
        *,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 2.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.prefix = prefix
        self.channel = f"{prefix}events"
        #: This instance's id in its events, to know its own when they come back.
        self.origin = secrets.token_hex(8)
        self._wall = wall
        self._backoff, self._backoff_max = backoff, backoff_max
        # Redis errors are handled here (logged, retried with backoff), not retried by the client.
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "client_name": f"modelgate-routing-{self.origin}",
        }
        #: Writes and loads: every command answers within ``timeout``.
        self._client: aioredis.Redis = aioredis.Redis.from_url(url, socket_timeout=timeout, **options)
        #: The subscription: a read that waits for the next event as long as it takes (no read
        #: timeout: an idle channel is no failure, and redis-py's timed read can swallow the
        #: task's cancellation at stop); a peer gone silent is noticed by TCP keepalive.
        self._listener: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_keepalive=True, socket_keepalive_options=_KEEPALIVE, **options
        )
        self._pools: dict[str, KeyPool] = {}  # by key fingerprint
        self._breakers: dict[DeploymentId, list[DeploymentHealth]] = {}
        self._writes: deque[tuple[str, dict[str, Any], int]] = deque(maxlen=MAX_PENDING)
        self._writer: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        #: Whether the subscription is up (and the state in Redis was loaded since it came up).
        self.connected = False
        self._connected = asyncio.Event()
        self._write_failing = False

    # ------------------------------------------------------------------ wiring and lifespan

    def attach(self, pools: Iterable[KeyPool], breakers: Iterable[DeploymentHealth]) -> None:
        for pool in pools:
            pool.listeners.append(self)
            for fingerprint in pool.fingerprints.values():
                self._pools[fingerprint] = pool
        for health in breakers:
            health.listeners.append(self)
            self._breakers.setdefault(deployment_id(health), []).append(health)

    async def start(self) -> None:
        """Start following the other instances (in the background: a Redis down delays nothing)."""
        self._subscriber = asyncio.get_running_loop().create_task(self._follow())

    async def wait_connected(self, timeout: float) -> bool:
        """Whether the subscription came up (and the state was loaded) within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def flush(self) -> None:
        """Wait for the changes written so far (tests; a clean stop)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        subscriber = self._subscriber
        if subscriber is not None:
            # Cancelled again until it ends: a cancel that lands inside redis-py's connect can be
            # swallowed there (seen under load), and the next read would wait for ever.
            stop_by = time.monotonic() + 2.0
            while not subscriber.done() and time.monotonic() < stop_by:
                subscriber.cancel()
                await asyncio.wait({subscriber}, timeout=0.05)
            if not subscriber.done():  # a stop never waits on Redis (or on a client library's bug) for long
                log.warning("shared routing state: the subscription did not stop at once")
        try:
            await asyncio.wait_for(self.flush(), 2.0)
        except TimeoutError:
            log.warning("shared routing state: %d changes not written at stop", len(self._writes))
        await self._client.aclose()
        await self._listener.aclose()

    def describe(self) -> dict[str, Any]:
        return {"shared": True, "backend": "redis", "connected": self.connected}

    # ------------------------------------------------------------------ changes decided here

    def key_rested(self, pool: KeyPool, key_id: str, reason: str, seconds: float) -> None:
        fingerprint = pool.fingerprints[key_id]
        event = {"kind": "rest", "provider": pool.provider, "key": fingerprint, "reason": reason}
        self._write(f"rest:{fingerprint}", event, seconds)

    def breaker_opened(self, health: DeploymentHealth, seconds: float) -> None:
        deployment = deployment_id(health)
        self._write(f"breaker:{breaker_key(deployment)}", {"kind": "open", "deployment": deployment}, seconds)

    def breaker_closed(self, health: DeploymentHealth) -> None:
        deployment = deployment_id(health)
        self._write(f"breaker:{breaker_key(deployment)}", {"kind": "close", "deployment": deployment}, 0.0)

    def _write(self, key: str, event: dict[str, Any], seconds: float) -> None:
        """Queue the change for the writer task (started when none runs): the request that
        made it never waits for Redis."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): nothing can be sent
            log.debug("shared routing state: %s not shared (no event loop)", key)
            return
        event = {**event, "origin": self.origin, "until": self._wall() + seconds}
        self._writes.append((key, event, max(1, round(seconds * 1000))))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued())

    async def _write_queued(self) -> None:
        while self._writes:
            key, event, ms = self._writes.popleft()
            message = orjson.dumps(event)
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    if event["kind"] == "close":
                        pipe.delete(self.prefix + key)
                    else:
                        pipe.set(self.prefix + key, message, px=ms)
                    pipe.publish(self.channel, message)
                    await pipe.execute()
            except Exception as e:  # never raised: routing goes on with this instance's state
                if not self._write_failing:
                    log.warning("shared routing state: could not write to Redis (%s); kept here only", e)
                self._write_failing = True
                continue
            if self._write_failing:
                log.info("shared routing state: writing to Redis again")
            self._write_failing = False

    # ------------------------------------------------------------------ changes decided elsewhere

    async def _follow(self) -> None:
        """Subscribe, load what Redis holds, apply events as they come; after a failure, again
        after a backoff (doubled each time, up to ``backoff_max``)."""
        delay = self._backoff
        failing = False
        while True:
            pubsub = self._listener.pubsub()
            try:
                await pubsub.subscribe(self.channel)  # before the load: no event falls between
                loaded = await self._load()
                self._write_own_state()
                self.connected = True
                self._connected.set()
                if failing:
                    log.info("shared routing state: Redis is back (%d rests and breakers loaded)", loaded)
                failing, delay = False, self._backoff
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None and message.get("type") == "message":
                        self.receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.connected = False
                self._connected.clear()
                if not failing:
                    log.warning(
                        "shared routing state: Redis unreachable (%s); routing goes on with this instance's "
                        "own state, retrying",
                        e,
                    )
                failing = True
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                except Exception:
                    log.debug("shared routing state: closing the subscription failed", exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    def _write_own_state(self) -> None:
        """Write again the rests and openings decided here that still run: those decided while
        Redis was away never reached it (at the first start there are none)."""
        for pool in dict.fromkeys(self._pools.values()):
            for key_id, reason, seconds in pool.own_rests():
                self.key_rested(pool, key_id, reason, seconds)
        for breakers in self._breakers.values():
            for health in breakers:
                left = health.own_opening()
                if left is not None:
                    self.breaker_opened(health, left)

    async def _load(self) -> int:
        """Apply the rests and open breakers Redis holds (other instances'); how many."""
        keys = [
            key
            for kind in ("rest", "breaker")
            async for key in self._client.scan_iter(match=f"{self.prefix}{kind}:*", count=1000)
        ]
        if not keys:
            return 0
        values = await self._client.mget(keys)
        return sum(self.receive(value) for value in values if value is not None)

    def receive(self, data: str | bytes) -> bool:
        """Apply one event of another instance; whether it applied to anything here."""
        try:
            event = orjson.loads(data)
            if event["origin"] == self.origin:
                return False
            kind = event["kind"]
            if kind == "rest":
                pool = self._pools.get(event["key"])
                seconds = float(event["until"]) - self._wall()
                return pool is not None and pool.apply_rest(event["key"], event["reason"], seconds) is not None
            model, provider, upstream = event["deployment"]
            breakers = self._breakers.get((str(model), str(provider), str(upstream)), [])
            for health in breakers:
                if kind == "open":
                    health.apply_open(float(event["until"]) - self._wall())
                elif kind == "close":
                    health.apply_close()
            return bool(breakers)
        except (ValueError, KeyError, TypeError):
            log.warning("shared routing state: an event not understood: %r", data)
            return False
