"""One exception hierarchy for the whole gateway.

Everything inside raises these; each front door renders them in its own wire envelope and
status at the edge (``protocols.<name>.errors``)::

    GatewayError                  kind            status  retryable
    ├── InvalidRequest            INVALID_REQUEST  400
    ├── AuthenticationFailed      AUTHENTICATION   401
    ├── PermissionDenied          PERMISSION       403
    ├── NotFound                  NOT_FOUND        404
    ├── RequestTooLarge           REQUEST_TOO_LARGE 413
    ├── LimitExceeded             RATE_LIMIT       429            (a key's limit or budget)
    ├── InternalError             API_ERROR        500
    ├── UpstreamUnavailable       API_ERROR        502     yes   (refused, reset, broken stream)
    ├── UpstreamTimeout           TIMEOUT          504     yes
    └── UpstreamHTTPError         by status        as is   by status (429, 5xx) or x-should-retry

Callers decide by ``kind`` (protocol-neutral: each protocol maps it to its own error type)
and ``retryable`` (whether another attempt may succeed: the router's retry and fallback
loops read it), never by matching messages. ``code`` is a stable, machine-readable reason
where one is more precise than the kind, in OpenAI's vocabulary where OpenAI has a word
for it (``invalid_api_key``, ``model_not_found``, ``context_length_exceeded``…).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class ErrorKind(StrEnum):
    """What went wrong, independent of any wire protocol."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    BILLING = "billing"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit"
    API_ERROR = "api_error"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"


class _Default:
    """Marks an argument left out, apart from an explicit ``None``."""


_DEFAULT: Final = _Default()


class GatewayError(Exception):
    status: int = 500
    kind: ErrorKind = ErrorKind.API_ERROR
    code: str | None = None
    retryable: bool = False
    #: A refusal by the gateway's own policy (a key's limit, budget, model list, IP rules):
    #: its ``code`` travels in every protocol's envelope, where clients and dashboards read it.
    policy: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: ErrorKind | None = None,
        code: str | _Default | None = _DEFAULT,
        param: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
        policy: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if policy is not None:
            self.policy = policy
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind
        if not isinstance(code, _Default):
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.param = param
        self.retry_after = retry_after
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status = 400
    kind = ErrorKind.INVALID_REQUEST


class AuthenticationFailed(GatewayError):
    status = 401
    kind = ErrorKind.AUTHENTICATION
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    kind = ErrorKind.PERMISSION


class NotFound(GatewayError):
    status = 404
    kind = ErrorKind.NOT_FOUND


class RequestTooLarge(GatewayError):
    status = 413
    kind = ErrorKind.REQUEST_TOO_LARGE
    code = "request_too_large"


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a refusal by one of the gateway's own limits tells a client in headers (each
    protocol its own: ``anthropic-ratelimit-*``, ``x-ratelimit-*``)."""

    #: ``requests`` or ``tokens`` (the limits providers have headers for), or ``spend``.
    resource: str
    limit: float
    remaining: float
    #: Epoch seconds when capacity frees (None: never).
    reset_at: float | None


class LimitExceeded(GatewayError):
    """A key, team or model is over one of its limits or budgets (the gateway's own refusal)."""

    status = 429
    kind = ErrorKind.RATE_LIMIT
    policy = True

    #: Longest wait (seconds) that clients are left to retry after by themselves: the SDKs
    #: honour ``retry-after`` up to a minute, and retry sooner than a longer one says.
    RETRY_HORIZON = 60.0

    def __init__(self, message: str, *, code: str, retry_after: float | None, info: RateLimitInfo) -> None:
        # A refusal that frees only in hours, or never, is not worth a retry: the SDKs (and
        # Claude Code, with its ten) read ``x-should-retry: false`` and give up at once.
        late = retry_after is None or retry_after > self.RETRY_HORIZON
        super().__init__(
            message, code=code, retry_after=retry_after, headers={"x-should-retry": "false"} if late else None
        )
        self.info = info


class InternalError(GatewayError):
    """A bug in the gateway: logged with its traceback, answered without details."""

    status = 500
    kind = ErrorKind.API_ERROR


class UpstreamUnavailable(GatewayError):
    """The upstream could not be reached, broke the connection, or answered nonsense (502)."""

    status = 502
    kind = ErrorKind.API_ERROR
    retryable = True


class UpstreamTimeout(GatewayError):
    status = 504
    kind = ErrorKind.TIMEOUT
    retryable = True


#: Upstream statuses worth another attempt (elsewhere, or later).
RETRYABLE_STATUSES: Final = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


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
        kind: ErrorKind,
        protocol: str,
        body: Any = None,
        raw: bytes = b"",
        param: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if retryable is None:
            retryable = status in RETRYABLE_STATUSES or status >= 500
        super().__init__(
            message,
            status=status,
            kind=kind,
            param=param,
            retry_after=retry_after,
            retryable=retryable,
            headers=headers,
        )
        self.protocol = protocol
        self.body = body
        self.raw = raw
        #: The upstream's own id for the failed request (its ``request-id`` / ``x-request-id``).
        self.upstream_request_id: str | None = None


#: The neutral kind for each HTTP status an upstream may answer.
_KIND_BY_STATUS: Final = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    402: ErrorKind.BILLING,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    409: ErrorKind.INVALID_REQUEST,
    413: ErrorKind.REQUEST_TOO_LARGE,
    422: ErrorKind.INVALID_REQUEST,
    429: ErrorKind.RATE_LIMIT,
    500: ErrorKind.API_ERROR,
    502: ErrorKind.API_ERROR,
    503: ErrorKind.OVERLOADED,
    504: ErrorKind.TIMEOUT,
    529: ErrorKind.OVERLOADED,
}


def kind_for_status(status: int) -> ErrorKind:
    if status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    return ErrorKind.INVALID_REQUEST if 400 <= status < 500 else ErrorKind.API_ERROR


def http_error(status: int, message: str) -> GatewayError:
    """A gateway error for an HTTP status the server itself chose (a wrong method, say)."""
    if status == 404:
        return NotFound(message)
    kind = ErrorKind.INVALID_REQUEST if status < 500 else ErrorKind.API_ERROR
    return GatewayError(message, status=status, kind=kind)
