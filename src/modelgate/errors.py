"""One exception hierarchy for the whole gateway.

Everything inside raises these; each front door renders them in its own wire
envelope and status code at the edge (see ``protocols.*.render_error``).
``kind`` is protocol-neutral; the front door maps it to its own error type.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status: int = 500
    kind: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.param = param
        self.retry_after = retry_after
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status = 400
    kind = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    kind = "authentication"


class PermissionDenied(GatewayError):
    status = 403
    kind = "permission"


class NotFound(GatewayError):
    status = 404
    kind = "not_found"


class RequestTooLarge(GatewayError):
    status = 413
    kind = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    kind = "rate_limit"


class InternalError(GatewayError):
    status = 500
    kind = "api_error"


class UpstreamUnavailable(GatewayError):
    """The upstream could not be reached or broke the connection (502)."""

    status = 502
    kind = "api_error"


class UpstreamTimeout(GatewayError):
    status = 504
    kind = "timeout"


class Overloaded(GatewayError):
    status = 529
    kind = "overloaded"


class UpstreamHTTPError(GatewayError):
    """The upstream answered with an error status.

    ``body`` is the upstream's parsed error body (already redacted of secrets) and
    ``protocol`` the wire protocol it speaks, so a front door of the same
    protocol can pass it through with its type and wording intact.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        kind: str,
        protocol: str,
        body: Any = None,
        raw: bytes = b"",
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after, headers=headers)
        self.kind = kind
        self.protocol = protocol
        self.body = body
        self.raw = raw


#: The neutral kind for each HTTP status an upstream may answer.
_KIND_BY_STATUS = {
    400: "invalid_request",
    401: "authentication",
    402: "billing",
    403: "permission",
    404: "not_found",
    408: "timeout",
    409: "invalid_request",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit",
    500: "api_error",
    502: "api_error",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}


def kind_for_status(status: int) -> str:
    if status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    return "invalid_request" if 400 <= status < 500 else "api_error"
