"""The scripting model of the fake upstream: what the next answer should be.

A *script* says how the fake answers one model request. Scripts come from two
places, and a queued script always wins over directives:

1. **The script queue**, filled over HTTP (``POST /_fake/script`` with one JSON
   object or a list of them) or from Python (``FakeUpstream.script(...)``). The
   queue is FIFO: a model request takes the first script whose ``match`` fits.

2. **Directives in the text of the last user message**, so that real CLIs (Claude
   Code, Codex …) can be driven from a prompt. Directives fire only when the last
   user turn is *not* a tool result; otherwise a prompt asking for a tool would
   make the fake ask for it again after every result, forever.

Script fields (all optional; the JSON object and ``Script.from_json`` take the same)::

    text          str    the answer text (default: the echo answer, see below)
    words         int    answer with N deterministic filler words instead of ``text``
    tool_calls    list   [{"name": str, "input": {...}, "id": str?}] → stop_reason tool_use
    thinking      str    a thinking block (with a signature) before the text;
                         OpenAI: counted as reasoning tokens (text only with quirk reasoning_content)
    error         dict   {"status": int, "type"?: str, "message"?: str, "retry_after"?: number,
                          "after"?: int, "body"?: any}: answer with that error envelope. With
                         ``after`` on a stream: send 200 and N events, then an in-stream error event.
                         ``body`` replaces the whole envelope; "{api_key}" in ``message`` becomes the
                         key the request carried (to test that the gateway redacts quoted keys).
    delay         float  seconds to wait before answering
    stall         float  seconds to wait between stream events
    break_after   int    stream: close the connection abruptly after N events (non-stream: after
                         half the body); the HTTP body is left incomplete, as when a peer dies
    end_after     int    stream: end the body cleanly after N events, without the protocol's end
                         (non-stream: a body cut in half, its content-length saying so)
    body          str    answer 200 with exactly this text instead of the protocol's answer (a
                         maintenance page: ``text/html`` when it starts with ``<``)
    stop_reason   str    force a stop reason (Anthropic vocabulary: end_turn, max_tokens,
                         stop_sequence, tool_use, pause_turn, refusal; mapped for OpenAI)
    usage         dict   overrides: input_tokens, output_tokens, cache_creation_input_tokens,
                         cache_read_input_tokens, reasoning_tokens
    quirks        list   OpenAI-compatible server sloppiness: no_usage, null_choices,
                         reasoning_content, usage_on_last_chunk (see ``fake_openai``)
    headers       dict   extra response headers (e.g. anthropic-ratelimit-*)
    match         dict   {"protocol": "anthropic"|"openai", "model": substring,
                          "endpoint": "messages"|"count_tokens"|"chat.completions"|"responses"|
                                      "responses.compact"|"generateContent",
                          "key": the exact API key the request carries (one key of a pool)};
                         without "endpoint" a script only matches the answering endpoints
    times         int    how many requests the script answers (default 1)

Directive syntax (``[[fake:NAME ARGS]]``, anywhere in the last user message, several allowed)::

    [[fake:text exact answer text]]        [[fake:words 500]]
    [[fake:tool Bash {"command":"echo hi"}]]   (repeat for parallel calls; JSON optional)
    [[fake:thinking some thought]]         [[fake:max_tokens]]   [[fake:stop refusal]]
    [[fake:error 529]]   [[fake:error 429 retry_after=3 rate limited]]   [[fake:error 529 after=4]]
    [[fake:delay 0.5]]   [[fake:stall 2]]   [[fake:break 3]]   [[fake:end 3]]   [[fake:body <html>…]]
    [[fake:usage {"cache_read_input_tokens": 100}]]   [[fake:quirks no_usage,null_choices]]

An unknown directive answers 400, so that a typo does not pass silently.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

STOP_REASONS = frozenset({"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"})
QUIRKS = frozenset({"no_usage", "null_choices", "reasoning_content", "usage_on_last_chunk"})
USAGE_KEYS = frozenset(
    {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "reasoning_tokens"}
)
ENDPOINTS = frozenset(
    {"messages", "count_tokens", "chat.completions", "responses", "responses.compact", "generateContent"}
)
ANSWERING_ENDPOINTS = frozenset({"messages", "chat.completions", "responses", "generateContent"})

_FIELDS = frozenset(
    {
        "text",
        "words",
        "tool_calls",
        "thinking",
        "error",
        "delay",
        "stall",
        "break_after",
        "end_after",
        "body",
        "stop_reason",
        "usage",
        "quirks",
        "headers",
        "match",
        "times",
    }
)
_ERROR_FIELDS = frozenset({"status", "type", "message", "retry_after", "after", "body"})


class ScriptError(ValueError):
    """A script or a directive that cannot be understood."""


@dataclass(slots=True, frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(slots=True, frozen=True)
class ErrorSpec:
    status: int
    type: str | None = None
    message: str | None = None
    retry_after: float | None = None
    #: On a stream: the number of events sent before an in-stream error event.
    after: int | None = None
    #: A complete body to send instead of the protocol's envelope.
    body: Any = None


@dataclass(slots=True)
class Script:
    text: str | None = None
    words: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    thinking: str | None = None
    error: ErrorSpec | None = None
    delay: float = 0.0
    stall: float = 0.0
    break_after: int | None = None
    end_after: int | None = None
    body: str | None = None
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    quirks: frozenset[str] = frozenset()
    headers: dict[str, str] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)
    times: int = 1

    @classmethod
    def from_json(cls, raw: Any) -> Script:
        """Validate a JSON script object; raises :class:`ScriptError` naming the bad field."""
        if not isinstance(raw, dict):
            raise ScriptError("a script must be a JSON object")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise ScriptError(f"unknown script fields: {sorted(unknown)}")
        s = cls()
        s.text = _opt(raw, "text", str)
        s.words = _opt(raw, "words", int)
        s.thinking = _opt(raw, "thinking", str)
        s.delay = float(_opt(raw, "delay", (int, float)) or 0.0)
        s.stall = float(_opt(raw, "stall", (int, float)) or 0.0)
        s.break_after = _opt(raw, "break_after", int)
        s.end_after = _opt(raw, "end_after", int)
        s.body = _opt(raw, "body", str)
        s.stop_reason = _opt(raw, "stop_reason", str)
        if s.stop_reason is not None and s.stop_reason not in STOP_REASONS:
            raise ScriptError(f"stop_reason: must be one of {sorted(STOP_REASONS)}")
        times = _opt(raw, "times", int)
        s.times = 1 if times is None else times
        if s.times < 1:
            raise ScriptError("times: must be at least 1")
        calls = _opt(raw, "tool_calls", list) or []
        s.tool_calls = tuple(_tool_call(c, i) for i, c in enumerate(calls))
        if raw.get("error") is not None:
            s.error = _error_spec(raw["error"])
        s.usage = _usage(_opt(raw, "usage", dict) or {})
        s.quirks = _quirks(_opt(raw, "quirks", list) or [])
        headers = _opt(raw, "headers", dict) or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ScriptError("headers: must map strings to strings")
        s.headers = headers
        match = _opt(raw, "match", dict) or {}
        if set(match) - {"protocol", "model", "endpoint", "key"}:
            raise ScriptError("match: only protocol, model, endpoint and key are supported")
        if match.get("endpoint") is not None and match["endpoint"] not in ENDPOINTS:
            raise ScriptError(f"match.endpoint: must be one of {sorted(ENDPOINTS)}")
        s.match = match
        return s

    def matches(self, protocol: str, endpoint: str, model: str, key: str | None = None) -> bool:
        m = self.match
        if not m:
            return endpoint in ANSWERING_ENDPOINTS
        if m.get("endpoint") is None:
            if endpoint not in ANSWERING_ENDPOINTS:
                return False
        elif m["endpoint"] != endpoint:
            return False
        if m.get("protocol") is not None and m["protocol"] != protocol:
            return False
        if m.get("key") is not None and m["key"] != key:
            return False
        return m.get("model") is None or m["model"] in model


def _opt(raw: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ScriptError(f"{name}: wrong type {type(value).__name__}")
    return value


def _tool_call(c: Any, i: int) -> ToolCall:
    if not isinstance(c, dict) or not isinstance(c.get("name"), str):
        raise ScriptError(f"tool_calls.{i}: needs a string name")
    tool_input = c.get("input", {})
    if not isinstance(tool_input, dict):
        raise ScriptError(f"tool_calls.{i}.input: must be an object")
    ident = c.get("id")
    if ident is not None and not isinstance(ident, str):
        raise ScriptError(f"tool_calls.{i}.id: must be a string")
    return ToolCall(c["name"], tool_input, ident)


def _error_spec(e: Any) -> ErrorSpec:
    if isinstance(e, int) and not isinstance(e, bool):
        e = {"status": e}
    if not isinstance(e, dict) or not isinstance(e.get("status"), int):
        raise ScriptError("error: needs an integer status")
    if set(e) - _ERROR_FIELDS:
        raise ScriptError(f"error: unknown fields {sorted(set(e) - _ERROR_FIELDS)}")
    if not 400 <= e["status"] <= 599:
        raise ScriptError("error.status: must be 4xx or 5xx")
    retry = e.get("retry_after")
    if retry is not None and (not isinstance(retry, (int, float)) or retry < 0):
        raise ScriptError("error.retry_after: must be a non-negative number")
    after = e.get("after")
    if after is not None and (not isinstance(after, int) or after < 0):
        raise ScriptError("error.after: must be a non-negative integer")
    return ErrorSpec(e["status"], e.get("type"), e.get("message"), retry, after, e.get("body"))


def _usage(u: dict[str, Any]) -> dict[str, int]:
    for k, v in u.items():
        if k not in USAGE_KEYS:
            raise ScriptError(f"usage.{k}: unknown (known: {sorted(USAGE_KEYS)})")
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ScriptError(f"usage.{k}: must be a non-negative integer")
    return dict(u)


def _quirks(q: list[Any]) -> frozenset[str]:
    bad = [x for x in q if x not in QUIRKS]
    if bad:
        raise ScriptError(f"quirks: unknown {bad} (known: {sorted(QUIRKS)})")
    return frozenset(q)


# --------------------------------------------------------------------------- directives

_OPEN = "[[fake:"
_CLOSE = "]]"


def parse_directives(text: str) -> tuple[Script | None, str]:
    """The script the ``[[fake:…]]`` directives in ``text`` describe, and ``text`` without them."""
    start = text.find(_OPEN)
    if start < 0:
        return None, text
    s = Script()
    texts: list[str] = []
    calls: list[ToolCall] = []
    kept: list[str] = []
    pos = 0
    while start >= 0:
        kept.append(text[pos:start])
        pos = _apply(text, start + len(_OPEN), s, texts, calls)
        start = text.find(_OPEN, pos)
    kept.append(text[pos:])
    if texts:
        s.text = "\n".join(texts)
    s.tool_calls = tuple(calls)
    return s, "".join(kept)


def _apply(text: str, i: int, s: Script, texts: list[str], calls: list[ToolCall]) -> int:
    """Apply the directive whose name starts at ``i``; return the index after its ``]]``."""
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] == "_"):
        j += 1
    name = text[i:j]
    if name == "tool":
        return _tool_directive(text, j, calls)
    end = text.find(_CLOSE, j)
    if end < 0:
        raise ScriptError(f"fake directive {name!r} is not closed with ]]")
    arg = text[j:end].strip()
    try:
        _set(name, arg, s, texts)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ScriptError(f"fake directive {name!r}: {exc}") from None
    return end + len(_CLOSE)


def _set(name: str, arg: str, s: Script, texts: list[str]) -> None:
    if name == "text":
        texts.append(arg)
    elif name == "words":
        s.words = int(arg)
    elif name == "thinking":
        s.thinking = arg
    elif name == "delay":
        s.delay = float(arg)
    elif name == "stall":
        s.stall = float(arg)
    elif name == "break":
        s.break_after = int(arg)
    elif name == "end":
        s.end_after = int(arg)
    elif name == "body":
        s.body = arg
    elif name == "max_tokens":
        s.stop_reason = "max_tokens"
    elif name == "stop":
        if arg not in STOP_REASONS:
            raise ValueError(f"stop reason must be one of {sorted(STOP_REASONS)}")
        s.stop_reason = arg
    elif name == "usage":
        s.usage = _usage(json.loads(arg))
    elif name == "quirks":
        s.quirks = _quirks([q.strip() for q in arg.split(",") if q.strip()])
    elif name == "error":
        s.error = _error_directive(arg)
    else:
        raise ValueError("unknown directive")


def _error_directive(arg: str) -> ErrorSpec:
    words = arg.split()
    if not words:
        raise ValueError("needs a status, e.g. [[fake:error 529]]")
    spec: dict[str, Any] = {"status": int(words[0])}
    message: list[str] = []
    for w in words[1:]:
        key, sep, value = w.partition("=")
        if sep and key in ("after", "retry_after", "type"):
            spec[key] = value if key == "type" else (int(value) if key == "after" else float(value))
        else:
            message.append(w)
    if message:
        spec["message"] = " ".join(message)
    return _error_spec(spec)


def _tool_directive(text: str, i: int, calls: list[ToolCall]) -> int:
    j = i
    while j < len(text) and text[j] in " \t\n":
        j += 1
    k = j
    while k < len(text) and not text[k].isspace() and not text.startswith(_CLOSE, k):
        k += 1
    name = text[j:k]
    if not name:
        raise ScriptError("fake directive 'tool' needs a tool name")
    while k < len(text) and text[k] in " \t\n":
        k += 1
    tool_input: Any = {}
    if k < len(text) and text[k] == "{":
        try:
            tool_input, k = json.JSONDecoder().raw_decode(text, k)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"fake directive 'tool {name}': bad JSON input: {exc}") from None
        while k < len(text) and text[k] in " \t\n":
            k += 1
    if not text.startswith(_CLOSE, k):
        raise ScriptError(f"fake directive 'tool {name}' is not closed with ]]")
    calls.append(ToolCall(name, tool_input))
    return k + len(_CLOSE)


# --------------------------------------------------------------------------- queue


@dataclass(slots=True)
class _Queued:
    """A queued script, the uses it has left, and the JSON it came from."""

    script: Script
    remaining: int
    source: dict[str, Any]


class ScriptQueue:
    """FIFO of scripts; a request takes the first one whose ``match`` fits it."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[_Queued] = deque()

    def push(self, script: Script, source: dict[str, Any]) -> None:
        self._items.append(_Queued(script, script.times, source))

    def take(self, protocol: str, endpoint: str, model: str, key: str | None = None) -> Script | None:
        if not self._items:
            return None
        for item in self._items:
            script = item.script
            if script.matches(protocol, endpoint, model, key):
                item.remaining -= 1
                if item.remaining <= 0:
                    self._items.remove(item)
                return script
        return None

    def clear(self) -> None:
        self._items.clear()

    def pending(self) -> list[dict[str, Any]]:
        return [{**item.source, "remaining": item.remaining} for item in self._items]

    def __len__(self) -> int:
        return len(self._items)
