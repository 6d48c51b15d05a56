"""What the router learns of the upstreams, shared by the instances of a fleet or not.

Key rests (``providers/keys.py``) and circuit breakers (``routing/health.py``) are decided
by each process from its own attempts, and kept in its memory: the request path reads them
there, never anywhere else, so sharing them costs the happy path nothing. What is shared is
the *changes*: a pool or a breaker reports each one to its ``listeners`` (:class:`RoutingEvents`)
and a shared state passes it on to the other instances, which apply it to their own pools
and breakers (``KeyPool.apply_rest``, ``DeploymentHealth.apply_open`` / ``apply_close``).

:class:`ProcessRouting` shares nothing (one instance: the state is the process's); with
``server.redis_url``, :class:`modelgate.routing.shared_redis.RedisRouting` shares it
through Redis. Keys are named between instances by fingerprint (a digest of the provider
and the secret), deployments by (model, provider, upstream model): two instances agree
whatever order their configs list them in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelgate.providers.keys import KeyPool
    from modelgate.routing.health import DeploymentHealth

#: What names a deployment between instances.
DeploymentId = tuple[str, str, str]


def deployment_id(health: DeploymentHealth) -> DeploymentId:
    return health.model, health.provider, health.upstream


class RoutingEvents(Protocol):
    """A listener of the changes a pool or a breaker decided (never of those it was told of):
    the metrics count them, a shared state passes them on to the fleet."""

    def key_rested(self, pool: KeyPool, key_id: str, reason: str, seconds: float) -> None: ...

    def breaker_opened(self, health: DeploymentHealth, seconds: float) -> None: ...

    def breaker_closed(self, health: DeploymentHealth) -> None: ...


class ProcessRouting:
    """Routing state kept by this process alone: nothing to wire, start or stop."""

    #: Whether other instances see this one's rests and breakers.
    shared = False

    def attach(self, pools: Iterable[KeyPool], breakers: Iterable[DeploymentHealth]) -> None:
        """Wire the pools and breakers whose changes are shared (none here)."""

    async def start(self) -> None:
        """Start sharing (nothing here)."""

    async def close(self) -> None:
        """Stop sharing (nothing here)."""

    def describe(self) -> dict[str, Any]:
        """Where the state lives, for operators (``/healthz``, ``GET /admin/providers``)."""
        return {"shared": False}


def open_routing_state(redis_url: str | None) -> ProcessRouting:
    """Redis-shared routing state when a URL is given, else the process's own."""
    if redis_url:
        from modelgate.routing.shared_redis import RedisRouting  # redis-py is imported only when it is used

        return RedisRouting(redis_url)
    return ProcessRouting()
