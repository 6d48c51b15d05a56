"""``generationConfig`` and ``toolConfig`` of a Gemini client request → IR fields.

Policies (translated path: the upstream is not Gemini):

- ``maxOutputTokens`` → ``max_tokens``; absent → :data:`DEFAULT_MAX_TOKENS` (8,192: Gemini's
  own default is the model's whole output window, which Anthropic and OpenAI models reject;
  8,192 is accepted by every current upstream, and a model's configured
  ``max_output_tokens`` still caps it).
- ``temperature``, ``topK``, ``stopSequences`` → as they are. ``topP`` → as it is, except
  ``1.0`` (no nucleus cut, the identity) which is left out: it changes nothing, and newer
  Claude models refuse ``temperature`` and ``top_p`` together (Gemini CLI sends both).
- ``candidateCount`` > 1 → 400 (one answer only).
- ``responseMimeType: application/json`` → ``output_format``: ``json_schema`` with
  ``responseJsonSchema`` (as written, type names lower-cased) or ``responseSchema``
  (OpenAPI subset converted, see :mod:`.schema`), else ``json_object``. ``text/plain`` is the
  default; any other type (``text/x.enum``) → 400. A schema without the JSON mime type → 400.
- ``thinkingConfig``: ``thinkingBudget`` 0 → thinking disabled; -1 (dynamic) → adaptive;
  N > 0 → enabled with budget N, as asked (each upstream codec fits it to what its API
  accepts, e.g. Anthropic's 1,024 minimum).
  ``thinkingLevel`` minimal → disabled; low / medium / high → adaptive with that ``effort``.
  ``includeThoughts`` alone → adaptive. Budget and level together → 400, as Gemini answers.
  ``includeThoughts`` also decides whether reasoning is shown to the client (the front door
  reads it with :func:`include_thoughts`).
- No equivalent elsewhere, refused with a 400 naming the field when set to anything but the
  neutral value: ``seed``, ``presencePenalty``/``frequencyPenalty`` (≠ 0), ``responseLogprobs``
  (true), ``logprobs``, ``responseModalities`` (other than TEXT), ``speechConfig``,
  ``imageConfig``, ``audioTimestamp``, ``enableAffectiveDialog``, ``enableEnhancedCivicAnswers``.
  ``mediaResolution`` is a hint about how many tokens Gemini spends on images; other
  upstreams read images their own way, so it is ignored.
- ``toolConfig.functionCallingConfig``: AUTO (and VALIDATED) → auto; NONE → none; ANY → any,
  and with ``allowedFunctionNames`` the tools are narrowed to those names (one name → that
  tool). ``retrievalConfig`` only serves grounding tools, which are refused, so it is ignored.
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.gemini.fields import as_dict, as_int, as_list, as_number, as_str, check_known, get
from modelgate.protocols.gemini.schema import to_json_schema

DEFAULT_MAX_TOKENS = 8192

_KNOWN = (
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
    "audioTimestamp",
    "enableAffectiveDialog",
)
#: Fields refused unless neutral: name → the neutral values.
_REFUSED: dict[str, tuple[Any, ...]] = {
    "seed": (),
    "presencePenalty": (0, 0.0),
    "frequencyPenalty": (0, 0.0),
    "responseLogprobs": (False,),
    "logprobs": (),
    "speechConfig": (),
    "imageConfig": (),
    "audioTimestamp": (False,),
    "enableAffectiveDialog": (False,),
    "enableEnhancedCivicAnswers": (False,),
}
_LEVELS = {"low": "low", "medium": "medium", "high": "high"}


def unsupported(where: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{where}: {what} is only available when the model is served by a Gemini upstream", param=where
    )


class Generation:
    """The IR fields one ``generationConfig`` sets."""

    __slots__ = ("effort", "max_tokens", "output_format", "stop", "temperature", "thinking", "top_k", "top_p")

    def __init__(self) -> None:
        self.max_tokens = DEFAULT_MAX_TOKENS
        self.temperature: float | None = None
        self.top_p: float | None = None
        self.top_k: int | None = None
        self.stop: list[str] | None = None
        self.output_format: dict[str, Any] | None = None
        self.thinking: ir.Thinking | None = None
        self.effort: str | None = None


def decode_generation(raw: Any) -> Generation:
    g = Generation()
    if raw is None:
        return g
    where = "generationConfig"
    config = as_dict(raw, where)
    check_known(config, _KNOWN, where)
    for name, neutral in _REFUSED.items():
        value = get(config, name)
        if value is not None and value not in neutral:
            raise unsupported(f"{where}.{name}", name)
    modalities = get(config, "responseModalities")
    if modalities is not None and any(
        str(m).upper() != "TEXT" for m in as_list(modalities, f"{where}.responseModalities")
    ):
        raise unsupported(f"{where}.responseModalities", "an output modality other than TEXT")
    count = get(config, "candidateCount")
    if count is not None and as_int(count, f"{where}.candidateCount") > 1:
        raise InvalidRequest(
            f"{where}.candidateCount: only one candidate can be generated for this model", param="candidateCount"
        )
    limit = get(config, "maxOutputTokens")
    if limit is not None:
        g.max_tokens = as_int(limit, f"{where}.maxOutputTokens")
        if g.max_tokens < 1:
            raise InvalidRequest(f"{where}.maxOutputTokens: must be positive", param="maxOutputTokens")
    if get(config, "temperature") is not None:
        g.temperature = as_number(get(config, "temperature"), f"{where}.temperature")
    top_p = get(config, "topP")
    if top_p is not None and as_number(top_p, f"{where}.topP") != 1:
        g.top_p = top_p
    if get(config, "topK") is not None:
        g.top_k = as_int(get(config, "topK"), f"{where}.topK")
    stop = get(config, "stopSequences")
    if stop is not None:
        g.stop = [
            as_str(s, f"{where}.stopSequences[{i}]") for i, s in enumerate(as_list(stop, f"{where}.stopSequences"))
        ]
    g.output_format = _output_format(config, where)
    _thinking(get(config, "thinkingConfig"), g, f"{where}.thinkingConfig")
    return g


def _output_format(config: dict[str, Any], where: str) -> dict[str, Any] | None:
    mime = get(config, "responseMimeType")
    schema = get(config, "responseSchema")
    json_schema = get(config, "responseJsonSchema")
    if schema is not None and json_schema is not None:
        raise InvalidRequest(
            f"{where}: responseSchema and responseJsonSchema cannot both be set", param="responseJsonSchema"
        )
    if mime is None or mime == "text/plain":
        if schema is not None or json_schema is not None:
            raise InvalidRequest(
                f"{where}.responseMimeType: a response schema needs responseMimeType application/json",
                param="responseMimeType",
            )
        return None
    if mime != "application/json":
        raise unsupported(f"{where}.responseMimeType", f"response mime type {mime!r}")
    if json_schema is not None:
        return {
            "type": "json_schema",
            "schema": to_json_schema(as_dict(json_schema, f"{where}.responseJsonSchema"), openapi=False),
        }
    if schema is not None:
        return {
            "type": "json_schema",
            "schema": to_json_schema(as_dict(schema, f"{where}.responseSchema"), openapi=True),
        }
    return {"type": "json_object"}


def _thinking(raw: Any, g: Generation, where: str) -> None:
    if raw is None:
        return
    config = as_dict(raw, where)
    check_known(config, ("includeThoughts", "thinkingBudget", "thinkingLevel"), where)
    budget = get(config, "thinkingBudget")
    level = get(config, "thinkingLevel")
    if budget is not None and level is not None:
        raise InvalidRequest(
            f"{where}: thinking_budget and thinking_level are not supported together.", param="thinkingLevel"
        )
    if level is not None:
        name = as_str(level, f"{where}.thinkingLevel").lower()
        if name == "minimal":
            g.thinking = ir.Thinking("disabled")
        elif name in _LEVELS:
            g.thinking, g.effort = ir.Thinking("adaptive"), _LEVELS[name]
        elif name != "thinking_level_unspecified":
            raise InvalidRequest(f"Invalid value at '{where}.thinking_level', \"{level}\"", param="thinkingLevel")
        return
    if budget is not None:
        n = as_int(budget, f"{where}.thinkingBudget")
        if n == 0:
            g.thinking = ir.Thinking("disabled")
        elif n < 0:
            g.thinking = ir.Thinking("adaptive")
        else:
            g.thinking = ir.Thinking("enabled", n)
        return
    if get(config, "includeThoughts") is True:
        g.thinking = ir.Thinking("adaptive")


def include_thoughts(body: Any) -> bool:
    """Whether the client asked to see reasoning (``generationConfig.thinkingConfig.includeThoughts``)."""
    if not isinstance(body, dict):
        return False
    config = get(body, "generationConfig")
    thinking = get(config, "thinkingConfig") if isinstance(config, dict) else None
    return isinstance(thinking, dict) and get(thinking, "includeThoughts") is True


# --------------------------------------------------------------------------- toolConfig


def decode_tool_config(raw: Any, tools: list[ir.Tool] | None) -> tuple[ir.ToolChoice | None, list[ir.Tool] | None]:
    """The IR tool choice of ``toolConfig``, and the tools narrowed to ``allowedFunctionNames``."""
    if raw is None:
        return None, tools
    where = "toolConfig"
    config = as_dict(raw, where)
    check_known(config, ("functionCallingConfig", "retrievalConfig"), where)
    fcc = get(config, "functionCallingConfig")
    if fcc is None:
        return None, tools
    where += ".functionCallingConfig"
    fcc = as_dict(fcc, where)
    check_known(fcc, ("mode", "allowedFunctionNames", "streamFunctionCallArguments"), where)
    if get(fcc, "streamFunctionCallArguments"):
        raise unsupported(f"{where}.streamFunctionCallArguments", "streaming function call arguments")
    mode = str(get(fcc, "mode") or "AUTO").upper()
    names = get(fcc, "allowedFunctionNames")
    if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
        return ir.ToolChoice("auto"), tools
    if mode == "NONE":
        return ir.ToolChoice("none"), tools
    if mode != "ANY":
        raise InvalidRequest(
            f"Invalid value at '{where}.mode' "
            f'(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "{mode}"',
            param="mode",
        )
    if not names:
        return ir.ToolChoice("any"), tools
    allowed = [as_str(n, f"{where}.allowedFunctionNames") for n in as_list(names, f"{where}.allowedFunctionNames")]
    known = {t.name for t in tools or ()}
    missing = [n for n in allowed if n not in known]
    if missing:
        raise InvalidRequest(
            f"{where}.allowedFunctionNames: {missing[0]!r} is not a declared function", param="allowedFunctionNames"
        )
    narrowed = [t for t in tools or () if t.name in allowed]
    if len(allowed) == 1:
        return ir.ToolChoice("tool", allowed[0]), narrowed
    return ir.ToolChoice("any"), narrowed
