"""Codec for the Anthropic Messages wire format, to and from the IR.

Pure functions only: no I/O, no globals. Used in both directions: by the
Anthropic front door (decode client requests, encode responses and stream
events) and by the Anthropic upstream when a request came in another protocol.
Split by concern: ``blocks`` (content blocks), ``request`` (validation, decode,
encode and fitting translated requests to the Messages API), ``response``
(responses and usage), ``stream`` (SSE events), ``errors`` (envelopes).
"""

from modelgate.protocols.anthropic.blocks import PROTOCOL, decode_block, encode_block
from modelgate.protocols.anthropic.errors import (
    error_body,
    error_from_object,
    error_from_upstream,
    error_type,
    prompt_too_long,
    render_error,
)
from modelgate.protocols.anthropic.request import MIN_THINKING_BUDGET, check_request, decode_request, encode_request
from modelgate.protocols.anthropic.response import decode_response, decode_usage, encode_response, encode_usage
from modelgate.protocols.anthropic.stream import StreamDecoder, encode_event
from modelgate.protocols.anthropic.tap import AnthropicTap

__all__ = [
    "MIN_THINKING_BUDGET",
    "PROTOCOL",
    "AnthropicTap",
    "StreamDecoder",
    "check_request",
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
    "prompt_too_long",
    "render_error",
]
