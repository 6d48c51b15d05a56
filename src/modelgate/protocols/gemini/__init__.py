"""Codec for the Gemini ``generateContent`` wire format, to and from the IR.

Pure functions and small stateful stream objects only: no I/O, no globals. The modules follow
the scheme of :mod:`modelgate.protocols.codec`; each documents its own policies (what maps to
what, what is refused):

- :mod:`.client_request` (with :mod:`.generation`, :mod:`.schema`, :mod:`.fields`): the cheap
  check, and a Gemini client's request → IR, for the translated path (``check_request``,
  ``decode_request``, ``decode_count_request``);
- :mod:`.client_response`: IR answer → ``GenerateContentResponse`` (``encode_response``);
- :mod:`.client_stream`: IR events → ``streamGenerateContent`` chunks, SSE or JSON array
  (``StreamEncoder``);
- :mod:`.upstream_request`: IR → request for a Gemini upstream (``encode_request``);
- :mod:`.upstream_response`: a Gemini upstream's ``GenerateContentResponse`` → IR
  (``decode_response``, ``decode_usage``);
- :mod:`.upstream_stream`: a Gemini upstream's SSE stream → IR events (``StreamDecoder``);
- :mod:`.errors`: Google's error envelope, both ways (``render_error``, ``error_body``,
  ``error_from_upstream``, ``error_from_object``);
- :mod:`.tap`: usage and end of a passthrough answer, SSE or JSON array (``GeminiTap``);
- :mod:`.collect`: a passthrough stream collected into the whole answer, for forced
  streaming (``ResponseCollector``);
- :mod:`.signatures`: thought signatures, and other providers' reasoning packed in them;
- :mod:`.jsonarray`: cutting a streamed JSON array on element boundaries (passthrough).
"""

from __future__ import annotations

from modelgate.protocols.gemini.client_request import check_request, decode_count_request, decode_request
from modelgate.protocols.gemini.client_response import encode_response
from modelgate.protocols.gemini.client_stream import StreamEncoder
from modelgate.protocols.gemini.collect import ResponseCollector
from modelgate.protocols.gemini.errors import (
    KEY_MISSING,
    PROTOCOL,
    error_body,
    error_from_object,
    error_from_upstream,
    render_error,
)
from modelgate.protocols.gemini.generation import DEFAULT_MAX_TOKENS, include_thoughts
from modelgate.protocols.gemini.tap import GeminiTap
from modelgate.protocols.gemini.upstream_request import encode_request
from modelgate.protocols.gemini.upstream_response import decode_response, decode_usage
from modelgate.protocols.gemini.upstream_stream import StreamDecoder

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "KEY_MISSING",
    "PROTOCOL",
    "GeminiTap",
    "ResponseCollector",
    "StreamDecoder",
    "StreamEncoder",
    "check_request",
    "decode_count_request",
    "decode_request",
    "decode_response",
    "decode_usage",
    "encode_request",
    "encode_response",
    "error_body",
    "error_from_object",
    "error_from_upstream",
    "include_thoughts",
    "render_error",
]
