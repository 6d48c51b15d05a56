"""The interface every upstream provider implements, and what they share.

A provider turns IR requests into calls to one upstream kind and parses the answers back
into IR (``complete``, ``open_stream``, ``count_tokens``: the translated path). When the
client already speaks one of the upstream's protocols, the chain relays the client's bytes
instead (``passthrough_url``, ``headers``, ``relay``, ``relay_stream``) and the upstream's
bytes come back untouched. Every method that reaches the upstream takes the
:class:`UpstreamKey` chosen for that attempt.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar

import orjson

from modelgate import ir
from modelgate.accounting.tokens import estimate_request_tokens
from modelgate.config import ProviderConfig
from modelgate.errors import ErrorKind, GatewayError, UpstreamHTTPError, UpstreamUnavailable
from modelgate.pipeline.context import Call
from modelgate.protocols import WireProtocol
from modelgate.protocols.codec import StreamDecoder
from modelgate.providers.http import HttpClient, Timeouts, UpstreamResponse
from modelgate.providers.keys import KeyPool, UpstreamKey
from modelgate.providers.streams import frame_aligned, sse_events

#: Upstream response headers a passthrough hands back to the client.
_PASS_RESPONSE_HEADERS = ("request-id", "retry-after", "x-should-retry", "x-request-id", "openai-processing-ms")
_PASS_RESPONSE_PREFIXES = ("anthropic-ratelimit-", "x-ratelimit-")
_PASS_RAW = frozenset(name.encode() for name in _PASS_RESPONSE_HEADERS)
_PASS_RAW_PREFIXES = tuple(prefix.encode() for prefix in _PASS_RESPONSE_PREFIXES)

T = TypeVar("T")


def describe_body(body: bytes) -> str:
    """A few words on an answer body that is not what it should be, for an error message."""
    if not body.strip():
        return "an empty body"
    text = " ".join(body[:80].decode("utf-8", "replace").split())
    return f"{len(body)} bytes starting {text!r}"


class ClientHeaderPolicy:
    """Which client request headers a passthrough forwards upstream: names and prefixes."""

    __slots__ = ("_raw_names", "_raw_prefixes", "names", "prefixes")

    def __init__(self, names: frozenset[str] = frozenset(), prefixes: tuple[str, ...] = ()) -> None:
        self.names = names
        self.prefixes = prefixes
        self._raw_names = frozenset(n.encode("latin-1") for n in names)
        self._raw_prefixes = tuple(p.encode("latin-1") for p in prefixes)

    def select(self, headers: Mapping[str, str], out: dict[str, str] | None = None) -> dict[str, str]:
        """The headers of ``headers`` that pass, added to ``out`` (a new dict by default)."""
        if out is None:
            out = {}
        if not self.names and not self.prefixes:
            return out
        raw: list[tuple[bytes, bytes]] | None = getattr(headers, "raw", None)
        if raw is not None:  # Starlette's Headers: the ASGI pairs, names already in lower case;
            # only the headers that pass are decoded (a loop: a comprehension costs a call)
            names, prefixes = self._raw_names, self._raw_prefixes
            for raw_name, raw_value in raw:
                if raw_name in names or raw_name.startswith(prefixes):
                    out[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
            return out
        for name, value in headers.items():
            if (low := name.lower()) in self.names or low.startswith(self.prefixes):
                out[low] = value
        return out


#: The one place that says which client headers reach an upstream of each protocol on the
#: passthrough path: the protocol's own options and the client's identity, never credentials
#: or hop-by-hop headers. (The translated path forwards none.)
CLIENT_HEADERS: Mapping[WireProtocol, ClientHeaderPolicy] = {
    # Versions and betas are open lists: forward every ``anthropic-*`` header unchanged.
    WireProtocol.ANTHROPIC: ClientHeaderPolicy(
        frozenset({"user-agent", "x-app", "x-claude-code-session-id"}), ("anthropic-",)
    ),
    WireProtocol.OPENAI_CHAT: ClientHeaderPolicy(),
    # Codex's session and identity headers, OpenAI betas.
    WireProtocol.OPENAI_RESPONSES: ClientHeaderPolicy(
        frozenset(
            {
                "openai-beta",
                "user-agent",
                "originator",
                "session_id",
                "session-id",
                "conversation_id",
                "thread-id",
                "x-client-request-id",
            }
        ),
        ("x-codex-", "x-openai-"),
    ),
    WireProtocol.GEMINI: ClientHeaderPolicy(frozenset({"user-agent", "x-goog-api-client"})),
}


@dataclass(slots=True)
class Reply:
    """A relayed answer: the upstream's status, the headers worth keeping, the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class StreamReply:
    """A relayed stream: its status, the headers worth keeping, its first chunk (read before
    the answer is handed over: empty for an empty stream) and the chunks after it."""

    status: int
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]
    first: bytes = b""


def pass_headers(upstream: Mapping[str, str] | Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The upstream response headers a relay hands back to the client: from a mapping, or from
    the raw pairs as aiohttp keeps them (then only those kept are decoded)."""
    out = {}
    if isinstance(upstream, Mapping):
        for name, value in upstream.items():
            low = name.lower()
            if low in _PASS_RESPONSE_HEADERS or low.startswith(_PASS_RESPONSE_PREFIXES):
                out[low] = value
        return out
    for raw_name, raw_value in upstream:
        raw_low = raw_name.lower()
        if raw_low in _PASS_RAW or raw_low.startswith(_PASS_RAW_PREFIXES):
            out[raw_low.decode("latin-1")] = raw_value.decode("latin-1")
    return out


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asks to wait: ``retry-after-ms`` (OpenAI's, more precise) first,
    then ``retry-after`` in seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Provider(ABC):
    #: The wire protocol the translated path speaks to the upstream.
    protocol: ClassVar[WireProtocol]
    #: Every wire protocol the upstream serves natively: a front door of one of these
    #: protocols relays its bytes untouched (passthrough) instead of translating.
    protocols: ClassVar[frozenset[WireProtocol]]
    #: Headers every request carries, before the client's and the config's.
    base_headers: ClassVar[Mapping[str, str]] = {"content-type": "application/json"}
    #: ``force_stream`` when the config leaves it unset.
    FORCE_STREAM: ClassVar[bool] = False

    def __init__(self, config: ProviderConfig, client: HttpClient) -> None:
        self.config = config
        self.name = config.name
        self.base_url = config.url
        self.keys = KeyPool(config.name, config.api_keys)
        #: The config's extra headers, named in lower case like every other header here, so
        #: that one name never goes out twice in two spellings.
        self.extra_headers = {name.lower(): value for name, value in config.headers.items()}
        self._client = client
        self._timeouts = Timeouts(
            config.connect_timeout,
            config.read_timeout,
            config.first_byte_timeout,
            config.idle_timeout,
            config.total_timeout,
        )
        #: Seconds a streamed answer may take to send its status line.
        self.first_byte_timeout = config.first_byte_timeout
        #: Whether a non-streamed generation goes upstream as a stream, collected into the
        #: whole answer (so that a hung upstream is found by ``first_byte_timeout``).
        self.force_stream = self.FORCE_STREAM if config.force_stream is None else config.force_stream
        self._secrets = [k.encode() for k in config.api_keys if len(k) >= 8]

    def passes_through(self, protocol: str, model: str) -> bool:
        """Whether a client speaking ``protocol`` for upstream ``model`` gets the passthrough path."""
        return protocol in self.protocols

    # ----------------------------------------------------------------- passthrough

    @abstractmethod
    def passthrough_url(self, call: Call, protocol: WireProtocol, upstream_model: str) -> str:
        """Where a ``protocol`` client's call goes on this upstream (without the query)."""

    @abstractmethod
    def auth_header(self, secret: str) -> tuple[str, str]:
        """The header that carries an upstream key."""

    def headers(
        self,
        key: UpstreamKey | None,
        client_headers: Mapping[str, str] | None = None,
        protocol: WireProtocol | None = None,
    ) -> dict[str, str]:
        """Upstream request headers: the base ones, the client's that ``CLIENT_HEADERS`` lets
        through for ``protocol`` (passthrough only), the config's, then ``key``."""
        out = dict(self.base_headers)
        if client_headers is not None and protocol is not None:
            CLIENT_HEADERS[protocol].select(client_headers, out)
        out.update(self.extra_headers)
        if key is not None:
            name, value = self.auth_header(key.secret)
            out[name] = value
        return out

    async def relay(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        resp = await self.post(url, body, headers)
        return Reply(resp.status, pass_headers(resp.raw_headers), await resp.read())

    async def relay_stream(
        self, url: str, body: bytes, headers: Mapping[str, str], first_byte: float | None = None
    ) -> StreamReply:
        """A streamed answer, once its status line (within ``first_byte`` seconds, the
        provider's ``first_byte_timeout`` by default) and its first chunk have come."""
        resp = await self.post(url, body, headers, first_byte or self.first_byte_timeout)
        chunks = frame_aligned(resp.iter_chunks())
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            first = b""
        return StreamReply(resp.status, pass_headers(resp.raw_headers), chunks, first)

    async def relay_stream_whole(
        self, url: str, body: bytes, headers: Mapping[str, str], first_byte: float | None = None
    ) -> Reply:
        """A streamed answer read to its end in one go (forced streaming: its bytes are
        collected, never relayed), with a stream's timeouts: the status line within
        ``first_byte`` seconds, every silence after it within the idle timeout."""
        resp = await self.post(url, body, headers, first_byte or self.first_byte_timeout)
        return Reply(resp.status, pass_headers(resp.raw_headers), await resp.read())

    # ----------------------------------------------------------------- translated path

    @abstractmethod
    async def complete(self, req: ir.Request, key: UpstreamKey | None) -> ir.Response:
        """Send an IR request and return the whole answer."""

    @abstractmethod
    async def open_stream(
        self, req: ir.Request, key: UpstreamKey | None, first_byte: float | None = None
    ) -> AsyncIterator[list[ir.StreamEvent]]:
        """Start a streamed answer, as batches of events (one per upstream read). Errors before
        the status line (within ``first_byte`` seconds, the provider's ``first_byte_timeout``
        by default) raise here; later ones are yielded as :class:`ir.StreamError`."""

    async def count_tokens(self, req: ir.Request, key: UpstreamKey | None) -> int:
        """Input tokens of ``req``: a local estimate unless the upstream can count."""
        return estimate_request_tokens(req)

    # ----------------------------------------------------------------- shared plumbing

    @abstractmethod
    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        """The typed error for an upstream error answer (``raw`` already redacted): the
        protocol codec's reading of it."""

    def redact(self, raw: bytes) -> bytes:
        """Remove our own provider secrets from upstream text before it reaches a client."""
        for secret in self._secrets:
            if secret in raw:
                raw = raw.replace(secret, b"[redacted]")
        return raw

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], first_byte: float | None = None
    ) -> UpstreamResponse:
        """POST and raise the typed upstream error for any status >= 400; a stream's status
        line must come within ``first_byte`` seconds (``HttpClient.post``)."""
        resp = await self._client.post(url, body, headers, self._timeouts, self.name, first_byte)
        if resp.status >= 400:
            raw = self.redact(await resp.read())
            err = self.error_from_upstream(resp.status, raw, resp.headers)
            delay = parse_retry_after(resp.headers)
            if delay is not None:
                err.retry_after = delay
            should_retry = resp.headers.get("x-should-retry")
            if should_retry in ("true", "false"):
                err.retryable = should_retry == "true"
            err.upstream_request_id = resp.headers.get("request-id") or resp.headers.get("x-request-id")
            raise err
        return resp

    async def read_json(self, resp: UpstreamResponse) -> Any:
        """A success body, parsed: one that is not JSON (a maintenance page, JSON cut short)
        is the upstream's failure (502, retryable), never the gateway's."""
        raw = await resp.read()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            what = describe_body(self.redact(raw))
            raise UpstreamUnavailable(f"upstream {self.name} answered {resp.status} with {what}, not JSON") from None

    def decoded(self, decode: Callable[[Any], T], data: Any) -> T:
        """``decode(data)``: JSON the codec cannot read as the protocol's answer is the
        upstream's failure too (502), never a bug of the gateway's."""
        try:
            return decode(data)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            error = f"{type(e).__name__}"
        except GatewayError as e:
            if e.kind is not ErrorKind.INVALID_REQUEST:
                raise
            error = e.message
        raise UpstreamUnavailable(
            f"upstream {self.name} answered with JSON that is not the protocol's answer ({error})"
        )

    def events(self, resp: UpstreamResponse, decoder: StreamDecoder) -> AsyncIterator[list[ir.StreamEvent]]:
        """IR events from an upstream SSE body, with pings when the upstream is quiet."""
        return sse_events(resp, decoder.decode, decoder.finish, self._client.idle_ping)
