"""What one request gathers on its way through the chain.

A :class:`RequestContext` is created when the request arrives (its id minted then, once)
and handed from stage to stage: admit fills ``caller`` and ``call``, plan ``plan``, each
attempt appends an :class:`Attempt`, respond records the first byte and the usage as it
goes by, settle reads it all at the end. Nothing in it knows HTTP or a wire format.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from modelgate import ir
from modelgate.errors import GatewayError
from modelgate.policy.auth import Principal

if TYPE_CHECKING:
    from modelgate.accounting.pricing import Price
    from modelgate.pipeline.plan import Plan
    from modelgate.policy.limits import Lease
    from modelgate.protocols.tap import AnswerTap
    from modelgate.routing.catalog import ModelRoute

#: Status recorded for a request whose client has gone (nginx's convention; nobody sees it).
CLIENT_CLOSED = 499


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


class Operation(StrEnum):
    """What a model endpoint asks of an upstream."""

    GENERATE = "generate"  # messages, chat completions, responses, generateContent
    COUNT_TOKENS = "count_tokens"  # count_tokens, countTokens
    COMPACT = "compact"  # responses/compact


@dataclass(slots=True)
class Call:
    """One decoded client call, ready to plan: the bytes as they came and the parsed body."""

    operation: Operation
    raw: bytes
    body: dict[str, Any]
    model: str
    stream: bool
    #: The API version in the client's path, where the protocol has one (Gemini's ``v1beta``).
    api_version: str | None = None


@dataclass(slots=True)
class Attempt:
    """One upstream call made for the request."""

    provider: str
    upstream_model: str
    #: The upstream key's id (never the key itself); None for a provider with no key.
    key_id: str | None
    passthrough: bool
    #: The catalog's name of the model tried: the one asked (a retry, another deployment) or a fallback.
    route: str | None = None
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None
    #: Seconds from sending the request to the upstream's status line (or its failure).
    latency: float | None = None
    error: GatewayError | None = None
    #: The upstream's own request id, when it sent one.
    upstream_request_id: str | None = None

    def answered(self, status: int) -> None:
        self.status = status
        self.latency = time.perf_counter() - self.started

    def failed(self, error: GatewayError) -> None:
        self.error = error
        self.status = error.status
        self.latency = time.perf_counter() - self.started


@dataclass(slots=True)
class RequestContext:
    """The life of one request, from arrival to settlement."""

    request_id: str
    #: The wire protocol the client speaks (its front door).
    door: str
    #: The endpoint called: ``messages``, ``count_tokens``, ``chat``, ``responses``, ``compact``,
    #: ``generateContent``, ``streamGenerateContent``, ``countTokens``.
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    caller: Principal | None = None
    call: Call | None = None
    #: The client's address, where a key's IP rules or the request log needed it.
    client_ip: str | None = None
    #: The per-application endpoint the request came through (``/v1/<id>/<provider>``), by id.
    endpoint_id: str | None = None
    #: The client's agent session (Claude Code's, Codex's, Gemini CLI's), when it names one.
    session_id: str | None = None
    #: The client's W3C trace context (``traceparent``, ``tracestate``), kept only when tracing is on.
    trace_context: dict[str, str] | None = None
    #: Keep this request's bodies in the request log (its key's or its endpoint's opt-in).
    log_bodies: bool = False
    #: The request log is on: settle records this request, respond counts its tool calls.
    recording: bool = False
    #: The client's ``User-Agent`` (capped), for the request log.
    user_agent: str | None = None
    #: Tool calls in the answer (counted where the request log is on; see ``pipeline.respond``).
    tool_calls: int = 0
    #: The answer's bytes as sent, up to ``body_cap`` (only when ``log_bodies``).
    answer: list[bytes] | None = None
    #: Bytes kept of each body (``records.body_max_bytes``).
    body_cap: int = 0
    #: Upstream keys the client brought for this request only, by provider name (BYOK).
    byok: dict[str, str] | None = None
    #: The serving model's price, and what the call reserved against its limits and budgets.
    price: Price | None = None
    lease: Lease | None = None
    #: The route of the last attempt: the one that served (after retries and fallbacks), whose
    #: price is what the answer costs, or the last that failed, whose error is the answer.
    route: ModelRoute | None = None
    #: What the answer cost, in USD (known at settlement).
    cost: float = 0.0
    plan: Plan | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: Reads usage and the end from a passthrough answer as it goes by.
    tap: AnswerTap | None = None
    usage: ir.Usage | None = None
    #: The answer ended as its protocol promises (``message_stop``, ``[DONE]``…).
    ended: bool = False
    stop_reason: str | None = None
    status: int | None = None
    error: GatewayError | None = None
    #: Seconds from arrival to the first byte of the answer written to the client.
    first_byte: float | None = None
    #: Seconds from arrival to settlement.
    duration: float | None = None
    client_gone: bool = False
    #: The answer is a stream, still open until it settles (for the open-streams gauge).
    streamed: bool = False
    settled: bool = False

    @property
    def attempt(self) -> Attempt | None:
        """The last attempt: the one that served, or the last that failed."""
        return self.attempts[-1] if self.attempts else None

    def mark_first_byte(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter() - self.started

    def fail(self, error: GatewayError, status: int | None = None) -> None:
        self.error = error
        self.status = status if status is not None else error.status
