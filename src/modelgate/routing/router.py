"""The router's judgement of a failed attempt: how long to wait before trying the same
upstream again, if at all.

The loop that acts on it lives in the chain (``Chain._recover``), where the attempts are;
this module holds only the rules, so that they are tested without any I/O. Errors are
judged by their class, kind and status (``errors.GatewayError``), never by their wording.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from modelgate.config import RouterConfig
from modelgate.errors import GatewayError


class Router:
    """The ``router:`` settings, and the decisions made from them."""

    def __init__(self, config: RouterConfig, draw: Callable[[], float] = random.random) -> None:
        self.config = config
        self.attempts = config.attempts
        self.deadline = config.deadline
        self._draw = draw

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
