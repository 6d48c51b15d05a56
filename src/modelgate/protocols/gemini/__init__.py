"""Codec for the Gemini ``generateContent`` wire format, to and from the IR.

Pure functions and small stateful stream objects only: no I/O, no globals. Each module
documents its own policies (what maps to what, what is refused):

- :mod:`.decode` (with :mod:`.generation`, :mod:`.schema`, :mod:`.fields`): a Gemini
  client's request → IR, for the translated path;
- :mod:`.response`: IR response ↔ ``GenerateContentResponse``, usage, finish reasons;
- :mod:`.stream_encode`: IR events → ``streamGenerateContent`` chunks (SSE or JSON array);
- :mod:`.encode`: IR → request for a Gemini upstream;
- :mod:`.stream_decode`: a Gemini upstream's SSE stream → IR events;
- :mod:`.errors`: Google's error envelope, both ways;
- :mod:`.signatures`: thought signatures, and other providers' reasoning packed in them;
- :mod:`.jsonarray`: cutting a streamed JSON array on element boundaries (passthrough).
"""

from __future__ import annotations

from modelgate.protocols.gemini.decode import decode_count_request, decode_request
from modelgate.protocols.gemini.encode import encode_request
from modelgate.protocols.gemini.errors import (
    KEY_MISSING,
    PROTOCOL,
    error_body,
    error_from_object,
    error_from_upstream,
    render_error,
)
from modelgate.protocols.gemini.generation import DEFAULT_MAX_TOKENS, include_thoughts
from modelgate.protocols.gemini.response import decode_response, encode_response
from modelgate.protocols.gemini.stream_decode import StreamDecoder
from modelgate.protocols.gemini.stream_encode import StreamEncoder
from modelgate.protocols.gemini.tap import GeminiTap

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "KEY_MISSING",
    "PROTOCOL",
    "GeminiTap",
    "StreamDecoder",
    "StreamEncoder",
    "decode_count_request",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "error_body",
    "error_from_object",
    "error_from_upstream",
    "include_thoughts",
    "render_error",
]
