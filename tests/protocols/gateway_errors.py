"""Gateway errors of the kinds no gateway code raises on its own yet (the router's and the
limits' refusals will): what every codec must still render in its envelope."""

from __future__ import annotations

from modelgate.errors import ErrorKind, GatewayError


def rate_limited(message: str, retry_after: float | None = None) -> GatewayError:
    return GatewayError(message, status=429, kind=ErrorKind.RATE_LIMIT, retry_after=retry_after, retryable=True)


def overloaded(message: str) -> GatewayError:
    return GatewayError(message, status=529, kind=ErrorKind.OVERLOADED, retryable=True)
