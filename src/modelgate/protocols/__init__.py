"""Pure codecs, one package per wire protocol, and the protocol ids they share.

Each package has the same shape: ``client_*`` modules for the front door's side (decode a
client's request, encode the answer and its stream), ``upstream_*`` modules for a provider's
side (encode a request for the upstream, decode its answer and stream), ``errors`` (the
client envelope and the upstream's error bodies) and ``tap`` (usage and end of a passthrough
answer as it goes by). :mod:`.codec` lists the modules and names every package exports, and
holds the two stream interfaces (``StreamEncoder``, ``StreamDecoder``); :mod:`.sse` parses
SSE, :mod:`.tap` holds the taps' base class.
"""

from __future__ import annotations

from enum import StrEnum


class WireProtocol(StrEnum):
    """The wire protocols clients and upstreams speak; each id is defined here only."""

    ANTHROPIC = "anthropic"
    OPENAI_CHAT = "openai_chat"
    OPENAI_RESPONSES = "openai_responses"
    GEMINI = "gemini"


__all__ = ["WireProtocol"]
