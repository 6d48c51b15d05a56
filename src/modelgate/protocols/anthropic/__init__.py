"""Codec for the Anthropic Messages wire format, to and from the IR.

Pure functions and per-stream objects only: no I/O, no globals. Used in both directions: by
the Anthropic front door (check and decode client requests, encode answers, streams and
errors) and by the Anthropic upstream when a request came in another protocol. The modules
follow the scheme of :mod:`modelgate.protocols.codec`:

- :mod:`.client_request`: the cheap checks and client JSON → IR (``check_request``,
  ``decode_request``);
- :mod:`.client_response`: IR answer → ``message`` (``encode_response``, ``encode_usage``);
- :mod:`.client_stream`: IR events → SSE frames (``encode_event``, ``StreamEncoder``);
- :mod:`.upstream_request`: IR → Messages request, fitted to what the API accepts
  (``encode_request``), and a client's request fitted to another model (``fit_body``);
- :mod:`.upstream_response`: ``message`` → IR (``decode_response``, ``decode_usage``);
- :mod:`.upstream_stream`: SSE frames → IR events (``StreamDecoder``);
- :mod:`.errors`: the error envelope, both ways (``render_error``, ``error_body``,
  ``error_from_upstream``, ``error_from_object``, ``prompt_too_long``);
- :mod:`.tap`: usage and end of a passthrough answer (``AnthropicTap``);
- :mod:`.background`: Claude Code's warm-up and session-title calls, recognised
  (``classify_background``);
- :mod:`.collect`: a stream collected into the whole message (``MessageCollector``,
  ``with_stream``: forced internal streaming);
- :mod:`.blocks`: content blocks, JSON ↔ IR, both directions (``decode_block``, ``encode_block``).
"""

from modelgate.protocols.anthropic.background import classify_background
from modelgate.protocols.anthropic.blocks import PROTOCOL, decode_block, encode_block
from modelgate.protocols.anthropic.client_request import check_request, decode_request
from modelgate.protocols.anthropic.client_response import encode_response, encode_usage
from modelgate.protocols.anthropic.client_stream import StreamEncoder, encode_event
from modelgate.protocols.anthropic.collect import MessageCollector, with_stream
from modelgate.protocols.anthropic.errors import (
    error_body,
    error_from_object,
    error_from_upstream,
    error_type,
    prompt_too_long,
    render_error,
)
from modelgate.protocols.anthropic.tap import AnthropicTap
from modelgate.protocols.anthropic.upstream_request import (
    MIN_THINKING_BUDGET,
    encode_request,
    fit_body,
    supports_adaptive_thinking,
)
from modelgate.protocols.anthropic.upstream_response import decode_response, decode_usage
from modelgate.protocols.anthropic.upstream_stream import StreamDecoder

__all__ = [
    "MIN_THINKING_BUDGET",
    "PROTOCOL",
    "AnthropicTap",
    "MessageCollector",
    "StreamDecoder",
    "StreamEncoder",
    "check_request",
    "classify_background",
    "decode_block",
    "decode_request",
    "decode_response",
    "decode_usage",
    "encode_block",
    "encode_event",
    "encode_request",
    "encode_response",
    "encode_usage",
    "error_body",
    "error_from_object",
    "error_from_upstream",
    "error_type",
    "fit_body",
    "prompt_too_long",
    "render_error",
    "supports_adaptive_thinking",
    "with_stream",
]
