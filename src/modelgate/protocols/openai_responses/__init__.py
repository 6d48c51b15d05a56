"""Codec for the OpenAI Responses API (``POST /v1/responses``), both directions.

The modules follow the scheme of :mod:`modelgate.protocols.codec`. Client side (the Responses
front door, when the routed model is not served by an OpenAI Responses upstream):
``client_request`` / ``client_input`` check and decode the request into the IR,
``client_response`` encodes the answer as a ``response`` object, ``client_stream`` as the
Responses event stream, ``compact`` serves ``/v1/responses/compact``. Upstream side (the
``openai`` provider, for models only the Responses API serves): ``upstream_request``,
``upstream_response``, ``upstream_stream``. ``errors`` holds the errors both ways: the stream's
error events are the Responses API's own, HTTP errors share ``openai_chat``'s envelope (its
``render_error``, ``error_body`` and ``error_from_upstream``, exported here too). ``common``
holds what both sides share (names, ids, effort scales, the reasoning envelope), ``tap`` the
passthrough answer tap (``ResponsesTap``), ``collect`` a stream collected into the whole
``response`` (``ResponseCollector``, ``with_stream``: forced internal streaming).
Pure functions and per-stream state only: no I/O, no globals; ids and clocks come in.

The translated path in one table (details in each module's docstring):

- ``instructions``, ``system``/``developer`` messages → system, in order.
- ``message`` items (``input_text``, ``output_text``, ``refusal`` parts) → text blocks;
  ``input_image`` (data or http URL) → image; ``input_file`` (PDF or text data, ``file_url``)
  → document; ``file_id`` is refused; ``detail`` is dropped (a resolution hint).
- ``function_call`` / ``function_call_output`` → tool_use / tool_result (``call_id`` is the
  tool id); ``custom_tool_call`` / its output → tool_use ``{"input": text}`` / tool_result.
- ``reasoning`` items → thinking or redacted thinking (see below); this gateway's own
  ``compaction`` items → a user text holding the summary, anyone else's are refused;
  ``item_reference`` and built-in tool call items are refused (a 400 naming the item).
- function, custom and namespace tools → tools (namespaced names flattened ``ns__name`` and
  split back in the answer); ``strict`` and ``defer_loading`` are dropped. ``web_search``
  and ``web_search_preview`` are left out (the model merely *may* use them, Codex declares
  them on every request, and no upstream here runs them); other built-in tools, and a
  ``tool_choice`` naming one, are refused with a 400 naming the type.
- ``text.format`` json_schema / json_object → ``output_format``.
- ``reasoning.effort`` → effort and a thinking budget (none → thinking disabled; minimal and
  low 1024, medium 4096, high 16384, xhigh 32768 tokens, kept below ``max_output_tokens``;
  no thinking when that leaves less than 1024).
- ``max_output_tokens`` → max_tokens: absent → 8192 (capped by the model's config), below
  16 refused as OpenAI does.
- ``previous_response_id``, ``conversation``, ``prompt``, ``background`` → refused (no
  stored responses); ``store``, ``metadata``, ``prompt_cache_*``, ``service_tier``,
  ``truncation`` … → ignored, and echoed back in the response object.

Reasoning round trip: a thinking block goes out as a reasoning item whose
``encrypted_content`` is OpenAI's own (for OpenAI reasoning) or an ``mg1:`` envelope holding
the exact text, signature and origin (for any other provider's); the envelope comes back as
the same block, so a Claude thinking signature survives a Codex tool loop and is only ever
replayed to Anthropic.

``store: true`` is harmless to ignore: nothing is stored, so ``GET /v1/responses/{id}``
answers 404, exactly as OpenAI does for a response created with ``store: false``; Codex
always sends ``store: false``.
"""

from __future__ import annotations

from modelgate.protocols.openai_chat.client_request import fit_thinking
from modelgate.protocols.openai_responses.client_request import check_request, decode_request
from modelgate.protocols.openai_responses.client_response import encode_response, encode_usage
from modelgate.protocols.openai_responses.client_stream import StreamEncoder, failed_event
from modelgate.protocols.openai_responses.collect import ResponseCollector, with_stream
from modelgate.protocols.openai_responses.common import DEFAULT_MAX_OUTPUT_TOKENS, PROTOCOL
from modelgate.protocols.openai_responses.compact import compaction_request, compaction_response
from modelgate.protocols.openai_responses.errors import (
    error_body,
    error_from_object,
    error_from_upstream,
    render_error,
    response_error,
)
from modelgate.protocols.openai_responses.tap import ResponsesTap
from modelgate.protocols.openai_responses.upstream_request import encode_request
from modelgate.protocols.openai_responses.upstream_response import decode_response, decode_usage
from modelgate.protocols.openai_responses.upstream_stream import StreamDecoder

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "PROTOCOL",
    "ResponseCollector",
    "ResponsesTap",
    "StreamDecoder",
    "StreamEncoder",
    "check_request",
    "compaction_request",
    "compaction_response",
    "decode_request",
    "decode_response",
    "decode_usage",
    "encode_request",
    "encode_response",
    "encode_usage",
    "error_body",
    "error_from_object",
    "error_from_upstream",
    "failed_event",
    "fit_thinking",
    "render_error",
    "response_error",
    "with_stream",
]
