"""The router's judgement of a failed attempt: what kind of failure it was, whether it
sends the request on to the model's fallbacks, and how long to wait before trying the same
upstream again.

The loop that acts on it lives in the chain (``Chain._recover``), where the attempts are;
this module holds only the rules, so that they are tested without any I/O. Errors are
judged by their class, kind and status (``errors.GatewayError``), never by their wording,
except a context overflow, which no status tells apart.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from modelgate.config import FailureClass, RouterConfig
from modelgate.errors import ErrorKind, GatewayError, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols.anthropic.errors import prompt_too_long

_CLASS_BY_KIND: dict[ErrorKind, FailureClass] = {
    ErrorKind.RATE_LIMIT: "rate_limit",
    ErrorKind.OVERLOADED: "overloaded",
    ErrorKind.TIMEOUT: "timeout",
    ErrorKind.AUTHENTICATION: "authentication",
    ErrorKind.PERMISSION: "authentication",
}


def failure_class(err: GatewayError) -> FailureClass | None:
    """The class of an upstream failure, None for one that is not the upstream's (a bad
    request, a bug in the gateway)."""
    upstream = isinstance(err, (UpstreamHTTPError, UpstreamUnavailable)) or err.retryable
    if not upstream:
        return None
    cls = _CLASS_BY_KIND.get(err.kind)
    if cls is not None:
        return cls
    if err.kind is ErrorKind.INVALID_REQUEST:
        return "context_window" if prompt_too_long(err.message) is not None else None
    if isinstance(err, UpstreamUnavailable) or err.status >= 500:
        return "unavailable"
    return None


class Router:
    """The ``router:`` settings, and the decisions made from them."""

    def __init__(self, config: RouterConfig, draw: Callable[[], float] = random.random) -> None:
        self.config = config
        self.attempts = config.attempts
        self.deadline = config.deadline
        self._fallback_on = frozenset(config.fallback_on)
        self.thinking_budget = config.thinking_budget
        #: Whether the breakers keep each deployment's latency (``auto`` ordered by it).
        self.measures_latency = config.auto is not None and config.auto.policy == "latency"
        #: Clients' background calls (``pipeline.background``): warm-ups answered locally, the
        #: model of session titles, and whether to look for either at all.
        self.warmup_local = config.warmup == "local"
        self.title_model = config.title_model
        self.background = self.warmup_local or self.title_model is not None
        self._draw = draw

    def falls_back(self, err: GatewayError) -> bool:
        """Whether ``err`` sends the request on to the model's fallbacks."""
        cls = failure_class(err)
        return cls is not None and cls in self._fallback_on

    def backoff(self, tries: int) -> float:
        """Seconds before retry number ``tries`` (1 for the first retry) at the same upstream:
        exponential, capped, with jitter."""
        c = self.config
        base: float = min(c.backoff_max, c.backoff * 2.0 ** (tries - 1))
        return base * (1 + c.jitter * (2 * self._draw() - 1))

    def wait(self, tries: int, err: GatewayError, remaining: float) -> float | None:
        """Seconds to wait before trying an upstream that failed with ``err`` again, or None
        when it is not worth it: the upstream's ``retry-after`` asks for longer than
        ``retry_after_cap``, or the wait would outlast the ``remaining`` time of the
        request's deadline."""
        told = err.retry_after or 0.0
        if told > self.config.retry_after_cap:
            return None
        delay = max(self.backoff(tries), told)
        return delay if delay < remaining else None
