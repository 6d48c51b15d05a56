"""Passive health of each deployment: a circuit breaker fed by the chain's own attempts.

No probe traffic: a deployment whose attempts fail ``router.health.failures`` times in a row
(with failures that say the upstream is unavailable: refused or broken connections,
timeouts, 429, 5xx, 529) *opens* for ``router.health.cooloff`` seconds. While open, plans
put it after the deployments that are not (``routing.catalog``), and a model whose every
deployment is open starts at its fallbacks. When the cool-off is over, the next request
tries it again (half-open): one success closes it, one more failure opens it again at once.

Each process counts its own failures; when a breaker opens or closes it tells its ``events``
(:mod:`modelgate.routing.shared`: nowhere by default, Redis for a fleet), and the openings
and closings of other instances arrive through :meth:`DeploymentHealth.apply_open` and
:meth:`DeploymentHealth.apply_close`. The hot path pays one attribute check per request
(``failures`` is 0 on a healthy deployment).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelgate.routing.shared import RoutingEvents

log = logging.getLogger("modelgate.health")


class DeploymentHealth:
    """The breaker of one deployment of one model (shared by every request for it)."""

    __slots__ = (
        "_clock",
        "_cooloff",
        "_threshold",
        "failures",
        "latency",
        "listeners",
        "model",
        "open_until",
        "provider",
        "remote",
        "upstream",
    )

    def __init__(
        self,
        model: str,
        provider: str,
        upstream: str,
        threshold: int = 5,
        cooloff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.provider = provider
        #: The upstream model id (the requested name, for a pattern: ``*``).
        self.upstream = upstream
        self._threshold = threshold
        self._cooloff = cooloff
        self._clock = clock
        #: Failures in a row since the last success.
        self.failures = 0
        #: ``time.monotonic()`` until which the breaker is open (0: closed).
        self.open_until = 0.0
        #: Seconds to the status line of recent successful attempts (a moving average).
        self.latency: float | None = None
        #: Whether the breaker was opened by another instance (learnt through the shared state).
        self.remote = False
        #: Told of the openings and closings decided here (the metrics; a fleet's shared state).
        self.listeners: list[RoutingEvents] = []

    def ok(self, latency: float | None = None) -> None:
        """An attempt succeeded: the breaker closes."""
        if self.failures and self.open_until:
            log.info("deployment %s of %s (provider %s) is healthy again", self.upstream, self.model, self.provider)
            for listener in self.listeners:
                listener.breaker_closed(self)
        self.failures = 0
        self.open_until = 0.0
        self.remote = False
        if latency is not None:
            self.latency = latency if self.latency is None else 0.8 * self.latency + 0.2 * latency

    def failed(self) -> None:
        """An attempt failed in a way that says the upstream is unavailable."""
        self.failures += 1
        if self.failures >= self._threshold:
            if not self.open_until:
                log.warning(
                    "deployment %s of %s (provider %s) failed %d times in a row: set aside for %.0f s",
                    self.upstream,
                    self.model,
                    self.provider,
                    self.failures,
                    self._cooloff,
                )
            now = self._clock()
            opens = self.open_until <= now  # closed or half-open: it opens now (not merely stays open)
            self.open_until = now + self._cooloff
            self.remote = False
            if opens:
                for listener in self.listeners:
                    listener.breaker_opened(self, self._cooloff)

    def apply_open(self, seconds: float) -> None:
        """Open for ``seconds`` more, as another instance decided (never reported back). The
        failures count as the threshold, so that after the cool-off one failure here opens it
        again at once, as if the failures had been seen here."""
        until = self._clock() + seconds
        if seconds <= 0 or until <= self.open_until:
            return
        if self.open_until <= self._clock():
            log.warning(
                "deployment %s of %s (provider %s) set aside by another instance for %.0f s",
                self.upstream,
                self.model,
                self.provider,
                seconds,
            )
        self.failures = max(self.failures, self._threshold)
        self.open_until = until
        self.remote = True

    def apply_close(self) -> None:
        """Closed, as another instance decided after a success (never reported back)."""
        if self.open_until:
            log.info(
                "deployment %s of %s (provider %s) is healthy again (another instance)",
                self.upstream,
                self.model,
                self.provider,
            )
        self.failures = 0
        self.open_until = 0.0
        self.remote = False

    def is_open(self, now: float) -> bool:
        return self.open_until > now

    def own_opening(self) -> float | None:
        """Seconds left of an opening decided here (not learnt from another instance), if any."""
        left = self.open_until - self._clock()
        return left if left > 0 and not self.remote else None

    def state(self) -> dict[str, Any]:
        """What operators see (``/healthz``)."""
        now = self._clock()
        state = "open" if self.open_until > now else ("half-open" if self.open_until else "closed")
        out: dict[str, Any] = {
            "model": self.model,
            "provider": self.provider,
            "upstream_model": self.upstream,
            "state": state,
            "failures": self.failures,
        }
        if state == "open":
            out["seconds_left"] = round(self.open_until - now, 1)
        if self.latency is not None:
            out["latency_ms"] = round(self.latency * 1000, 1)
        if self.remote and state != "closed":
            out["remote"] = True
        return out
