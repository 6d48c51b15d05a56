"""A client's Chat Completions request → IR (the translated path; passthrough never decodes),
and the cheap checks every request gets, passthrough included (:func:`check_request`).

Messages, tools and response formats are decoded in :mod:`.client_messages` and
:mod:`.client_tools`. Every other field is mapped, dropped or refused; unknown fields are refused
as OpenAI refuses them ("Unrecognized request argument supplied"). The IR's ``extras`` stay
empty: an upstream codec forwards extras verbatim, and OpenAI-only fields would make another
provider reject the request.

Field by field:

- mapped: ``model``, ``messages``, ``stream``; ``max_completion_tokens`` / ``max_tokens`` →
  ``max_tokens`` (the former wins; neither: 4096, plus the thinking budget); ``temperature``,
  ``top_p`` and ``top_k`` (an extension local servers take) as they are; ``stop`` (string or
  list) → ``stop_sequences``; ``tools``, ``functions``, ``tool_choice``, ``function_call``,
  ``parallel_tool_calls`` (:mod:`.client_tools`); ``response_format`` → ``output_format``;
  ``reasoning_effort`` → ``effort`` and a thinking budget (below); Anthropic's ``thinking``
  object (an extension Anthropic's own OpenAI-compatible endpoint takes through ``extra_body``)
  → ``thinking``, over the one ``reasoning_effort`` implies; ``user`` (else
  ``safety_identifier``) → ``metadata.user_id``; ``stream_options.include_usage`` → the stream's
  usage chunk (``stream_options`` without ``stream: true`` is refused, as OpenAI does).
- refused, because the answer would differ from what was asked: ``n`` other than 1; ``logprobs:
  true``; ``top_logprobs`` > 0; a non-empty ``logit_bias``; ``modalities`` other than
  ``["text"]``; ``audio``; ``web_search_options``; ``moderation``.
- dropped, as hints no other provider takes (the answer is still an answer to the request):
  ``seed``, ``presence_penalty``, ``frequency_penalty``, ``verbosity``, ``prediction``; and
  OpenAI's own platform controls (billing, storage, caching): ``service_tier``, ``store``,
  ``metadata``, ``prompt_cache_key``, ``prompt_cache_retention``, ``prompt_cache_options``,
  ``stream_options.include_obfuscation``.

``reasoning_effort`` → IR ``effort`` (``xhigh`` → ``max``; ``none`` → no effort) and, for
upstreams that think with a token budget (Anthropic, Gemini), ``thinking``: ``none`` and
``minimal`` → disabled, ``low`` 1024, ``medium`` 4096, ``high`` 16384, ``xhigh``/``max`` 32768.
The budget counts inside ``max_tokens`` (OpenAI's ``max_completion_tokens`` bounds reasoning and
answer together): :func:`fit_thinking` keeps it below the final ``max_tokens`` and drops thinking
when less than Anthropic's minimum of 1024 would remain.
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.protocols.openai_chat.client_messages import decode_messages, missing, wrong_type
from modelgate.protocols.openai_chat.client_tools import decode_response_format, decode_tools
from modelgate.protocols.openai_chat.errors import invalid

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
#: reasoning_effort → (IR effort, thinking budget or None for thinking disabled)
EFFORTS: dict[str, tuple[str | None, int | None]] = {
    "none": (None, None),
    "minimal": ("minimal", None),
    "low": ("low", 1024),
    "medium": ("medium", 4096),
    "high": ("high", 16384),
    "xhigh": ("max", 32768),
    "max": ("max", 32768),
}

_MAPPED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "functions",
        "tool_choice",
        "function_call",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "thinking",
        "user",
        "safety_identifier",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "modalities",
        "audio",
        "web_search_options",
        "moderation",
    }
)
_DROPPED = frozenset(
    {
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "verbosity",
        "prediction",
        "service_tier",
        "store",
        "metadata",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
    }
)


def check_request(body: Any) -> None:
    """The cheap checks every request gets, passthrough included: what routing needs."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    model = body.get("model")
    if model is None or model == "":
        raise invalid("you must provide a model parameter")
    if not isinstance(model, str):
        raise wrong_type("model", "a string", model)
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise wrong_type("messages", "an array", messages)
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise wrong_type("stream", "a boolean", stream)


def include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def decode_request(body: dict[str, Any]) -> ir.Request:
    """Client JSON → IR. Raises :class:`InvalidRequest` (with OpenAI's ``param`` and ``code``)."""
    check_request(body)
    for name in body:
        if name not in _MAPPED and name not in _DROPPED:
            raise invalid(f"Unrecognized request argument supplied: {name}", name)
    _refuse_unsupported(body)
    stream = bool(body.get("stream"))
    if body.get("stream_options") is not None and not stream:
        raise invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    system, messages = decode_messages(body["messages"])
    tools, tool_choice = decode_tools(body)
    effort, thinking = _effort(body.get("reasoning_effort"))
    thinking = _thinking(body.get("thinking")) or thinking
    max_tokens = _max_tokens(body)
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS + ((thinking.budget_tokens or 0) if thinking else 0)
    user = _string(body, "user") or _string(body, "safety_identifier")
    return ir.Request(
        model=body["model"],
        messages=messages,
        max_tokens=max_tokens,
        system=system,
        stream=stream,
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        top_k=_top_k(body.get("top_k")),
        stop_sequences=_stop(body.get("stop")),
        tools=tools,
        tool_choice=tool_choice,
        thinking=thinking,
        effort=effort,
        output_format=decode_response_format(body.get("response_format")),
        metadata={"user_id": user} if user else None,
    )


def fit_thinking(req: ir.Request, max_tokens: int) -> None:
    """Set the final ``max_tokens`` and keep the thinking budget inside it (Anthropic requires
    budget < max_tokens, and at least 1024)."""
    req.max_tokens = max_tokens
    th = req.thinking
    if th is None or th.type != "enabled" or th.budget_tokens is None:
        return
    budget = min(th.budget_tokens, max_tokens - 1)
    req.thinking = ir.Thinking("enabled", budget) if budget >= MIN_THINKING_BUDGET else None


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid("n: only n=1 is supported", "n", "unsupported_value")
    if body.get("logprobs") is True:
        raise invalid("logprobs: log probabilities are not available for this model", "logprobs", "unsupported_value")
    top = body.get("top_logprobs")
    if top is not None and top != 0:
        raise invalid(
            "top_logprobs: log probabilities are not available for this model", "top_logprobs", "unsupported_value"
        )
    if body.get("logit_bias"):
        raise invalid("logit_bias: token biases cannot be applied to this model", "logit_bias", "unsupported_value")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise invalid('modalities: only ["text"] output is supported for this model', "modalities", "unsupported_value")
    for name, what in (
        ("audio", "audio output is"),
        ("web_search_options", "web search is"),
        ("moderation", "moderated completions are"),
    ):
        if body.get(name) is not None:
            raise invalid(f"{name}: {what} not supported for this model", name, "unsupported_value")


def _effort(raw: Any) -> tuple[str | None, ir.Thinking | None]:
    if raw is None:
        return None, None
    if raw not in EFFORTS:
        supported = ", ".join(repr(e) for e in EFFORTS)
        raise invalid(
            f"Invalid value: {raw!r}. Supported values are: {supported}.", "reasoning_effort", "invalid_value"
        )
    effort, budget = EFFORTS[raw]
    return effort, (ir.Thinking("enabled", budget) if budget else ir.Thinking("disabled"))


def _thinking(raw: Any) -> ir.Thinking | None:
    """Anthropic's ``thinking`` object, which its own OpenAI-compatible endpoint takes (``extra_body``)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise wrong_type("thinking", "an object", raw)
    kind = raw.get("type")
    if kind not in ("enabled", "adaptive", "disabled"):
        raise invalid(
            f"Invalid value: {kind!r}. Supported values are: 'enabled', 'adaptive' and 'disabled'.",
            "thinking.type",
            "invalid_value",
        )
    budget = raw.get("budget_tokens")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
        raise wrong_type("thinking.budget_tokens", "an integer", budget)
    return ir.Thinking(kind, budget)


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise wrong_type(name, "an integer", value)
        if value < 1:
            raise invalid(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
                name,
                "integer_below_min_value",
            )
        return value
    return None


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise wrong_type(name, "a number", value)
    if value < low:
        raise invalid(
            f"Invalid '{name}': decimal below minimum value. Expected a value >= {low}, but got {value} instead.",
            name,
            "decimal_below_min_value",
        )
    if value > high:
        raise invalid(
            f"Invalid '{name}': decimal above maximum value. Expected a value <= {high}, but got {value} instead.",
            name,
            "decimal_above_max_value",
        )
    return value


def _top_k(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise wrong_type("top_k", "an integer", value)
    return value


def _stop(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise wrong_type("stop", "one of a string or array of strings", value)
    return [s for s in value if s] or None


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(name, "a string", value)
    return value or None
