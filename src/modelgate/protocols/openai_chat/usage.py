"""Usage in both directions: OpenAI's ``usage`` object ↔ IR :class:`ir.Usage`.

OpenAI's ``prompt_tokens`` includes cached tokens and Anthropic's ``input_tokens`` (the IR's)
excludes them, so:

- decoding: input = prompt - cached - cache writes, cache read = ``cached_tokens`` (or DeepSeek's
  ``prompt_cache_hit_tokens``), cache write = ``cache_write_tokens``, output =
  ``completion_tokens`` (reasoning included, as in Anthropic), reasoning = ``reasoning_tokens``.
  Missing or null fields count zero.
- encoding: prompt = input + cache read + cache write, ``cached_tokens`` = cache read,
  ``cache_write_tokens`` (in the SDK's ``PromptTokensDetails``) only when there were writes,
  ``reasoning_tokens`` = reasoning; the other detail counters OpenAI always sends are zero.
"""

from __future__ import annotations

from typing import Any

from modelgate import ir


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, float) else 0


def decode_usage(raw: Any) -> ir.Usage:
    """OpenAI usage → IR usage (input excludes cached tokens, as Anthropic counts it)."""
    if not isinstance(raw, dict):
        return ir.Usage()
    prompt_details = raw.get("prompt_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = raw.get("completion_tokens_details")
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    cached = _count(prompt_details.get("cached_tokens")) or _count(raw.get("prompt_cache_hit_tokens"))
    written = _count(prompt_details.get("cache_write_tokens"))
    return ir.Usage(
        input_tokens=max(_count(raw.get("prompt_tokens")) - cached - written, 0),
        output_tokens=_count(raw.get("completion_tokens")),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=_count(completion_details.get("reasoning_tokens")),
    )


def encode_usage(u: ir.Usage) -> dict[str, Any]:
    """IR usage → OpenAI's ``usage`` object."""
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    prompt_details: dict[str, int] = {"cached_tokens": u.cache_read_tokens, "audio_tokens": 0}
    if u.cache_write_tokens:
        prompt_details["cache_write_tokens"] = u.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
