"""Codec for the OpenAI Chat Completions wire format, to and from the IR. Pure: no I/O, no globals.

Two directions, one module per concern, in the scheme of :mod:`modelgate.protocols.codec`
(each module's docstring holds its policies):

Upstream (an OpenAI-compatible server behind the gateway):
- :mod:`.upstream_request`: IR request → Chat request JSON (``encode_request``);
- :mod:`.upstream_response`: ``chat.completion`` → IR (``decode_response``);
- :mod:`.upstream_stream`: ``chat.completion.chunk`` frames → IR events (``StreamDecoder``).

Client (an OpenAI SDK, Cursor, OpenCode, Aider in front of the gateway):
- :mod:`.client_request` (with :mod:`.client_messages`, :mod:`.client_tools`): Chat request → IR
  (``check_request``, ``decode_request``, ``fit_thinking``);
- :mod:`.client_response`: IR response → ``chat.completion`` (``encode_response``);
- :mod:`.client_stream`: IR events → ``chat.completion.chunk`` SSE bytes (``StreamEncoder``).

Both:
- :mod:`.errors`: OpenAI's error envelope and statuses for clients (``render_error``,
  ``error_body``, ``error_status``), and upstream error bodies → :class:`UpstreamHTTPError`
  (``error_from_upstream``, ``error_from_object``);
- :mod:`.usage`: ``decode_usage``, ``encode_usage``;
- :mod:`.tap`: usage and end of a passthrough answer (``ChatTap``), and asking a stream for its
  usage (``request_usage``);
- :mod:`.collect`: a stream collected into the whole ``chat.completion``
  (``CompletionCollector``, ``with_stream``: forced internal streaming).
"""

from __future__ import annotations

from modelgate.protocols.openai_chat.client_request import (
    DEFAULT_MAX_TOKENS,
    EFFORTS,
    check_request,
    decode_request,
    fit_thinking,
    include_usage,
)
from modelgate.protocols.openai_chat.client_response import encode_response
from modelgate.protocols.openai_chat.client_stream import StreamEncoder
from modelgate.protocols.openai_chat.collect import CompletionCollector, with_stream
from modelgate.protocols.openai_chat.errors import (
    PROTOCOL,
    error_body,
    error_from_object,
    error_from_upstream,
    error_status,
    invalid,
    missing_key,
    model_not_found,
    render_error,
    wrong_key,
)
from modelgate.protocols.openai_chat.tap import ChatTap
from modelgate.protocols.openai_chat.upstream_request import encode_request, unmapped_extras
from modelgate.protocols.openai_chat.upstream_response import (
    decode_response,
    fallback_tool_id,
    parse_arguments,
    reasoning_text,
    stop_reason_for,
)
from modelgate.protocols.openai_chat.upstream_stream import StreamDecoder
from modelgate.protocols.openai_chat.usage import decode_usage, encode_usage

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EFFORTS",
    "PROTOCOL",
    "ChatTap",
    "CompletionCollector",
    "StreamDecoder",
    "StreamEncoder",
    "check_request",
    "decode_request",
    "decode_response",
    "decode_usage",
    "encode_request",
    "encode_response",
    "encode_usage",
    "error_body",
    "error_from_object",
    "error_from_upstream",
    "error_status",
    "fallback_tool_id",
    "fit_thinking",
    "include_usage",
    "invalid",
    "missing_key",
    "model_not_found",
    "parse_arguments",
    "reasoning_text",
    "render_error",
    "stop_reason_for",
    "unmapped_extras",
    "with_stream",
    "wrong_key",
]
