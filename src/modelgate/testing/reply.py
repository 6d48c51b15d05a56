"""From a request and a script to the answer, deterministically and protocol-neutrally.

The default answer echoes the last user message::

    Hello from the fake upstream. You said: <first 200 chars of the last user text, directives removed>

and after a tool result (Anthropic ``tool_result`` blocks, OpenAI ``role: tool``)::

    Tool result received: <first 200 chars of the result texts, joined by newlines>

Token counts follow fixed formulas, so tests can predict them:

* input tokens = ceil(len(compact JSON of [system, messages, tools]) / 4) for
  Anthropic, of [messages, tools] for OpenAI (what ``count_tokens`` returns too);
* output tokens = words of the text + words of the thinking + for each tool call
  ceil((len(name) + len(JSON arguments)) / 4), at least 1; "words" are
  whitespace-separated runs (``len(s.split())``);
* the answer honours the request's ``max_tokens``: past it, the text is cut to
  fit (tool calls dropped) and the stop reason is ``max_tokens``; a stop
  sequence found in the text cuts it there with stop reason ``stop_sequence``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate.testing.script import ErrorSpec, Script

ECHO_PREFIX = "Hello from the fake upstream. You said: "
TOOL_RESULT_PREFIX = "Tool result received: "
AUTO_THINKING = "Let me think about this request before answering."
ECHO_LIMIT = 200

_PIECES = re.compile(r"\s*\S+\s*|\s+")
_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod")
_SIGNING_KEY = b"modelgate-fake-upstream\x00"


@dataclass(slots=True)
class Turn:
    """What the fake needs to know about a request, extracted by each protocol."""

    model: str
    #: Text of the last user message (directives included).
    user_text: str
    #: Texts of the tool results in the last user turn; ``None`` when it holds none.
    tool_results: list[str] | None
    input_tokens: int
    max_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    #: The request asked for thinking (Anthropic ``thinking`` enabled or adaptive).
    auto_thinking: bool = False


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Call:
    id: str
    name: str
    input: dict[str, Any]
    arguments: str  # the input as compact JSON text


@dataclass(slots=True)
class Reply:
    text: str | None
    thinking: str | None
    signature: str | None
    calls: list[Call]
    stop_reason: str
    stop_sequence: str | None
    usage: Usage
    stall: float = 0.0
    break_after: int | None = None
    end_after: int | None = None
    body: str | None = None
    error: ErrorSpec | None = None
    quirks: frozenset[str] = frozenset()
    headers: dict[str, str] = field(default_factory=dict)


def text_of(content: Any, part_type: str | None = "text") -> str:
    """The text of a message's (or tool result's) content: a string as it is, or the texts of a
    list of parts joined by newlines (only parts of ``part_type``; of any type with ``None``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, dict)
            and (part_type is None or p.get("type") == part_type)
            and isinstance(p.get("text"), str)
        )
    return ""


def estimate_tokens(parts: list[Any]) -> int:
    return max(1, (len(orjson.dumps(parts)) + 3) // 4)


def count_words(text: str | None) -> int:
    return len(text.split()) if text else 0


def split_pieces(text: str) -> list[str]:
    """Word-sized stream deltas whose concatenation is ``text`` exactly."""
    return _PIECES.findall(text) or ([text] if text else [])


def split_json(text: str, size: int = 12) -> list[str]:
    """``partial_json``/``arguments`` fragments (at least two when the text allows)."""
    if len(text) <= size:
        size = max(1, (len(text) + 1) // 2)
    return [text[i : i + size] for i in range(0, len(text), size)]


def sign(thinking: str) -> str:
    """The signature the fake puts on a thinking block (and checks when it comes back)."""
    digest = hashlib.sha256(_SIGNING_KEY + thinking.encode()).digest()
    return base64.b64encode(digest * 3).decode()


def filler(words: int) -> str:
    return " ".join(_FILLER[i % len(_FILLER)] for i in range(words))


def echo_text(user_text: str) -> str:
    return ECHO_PREFIX + user_text.strip()[:ECHO_LIMIT]


def build_reply(turn: Turn, script: Script | None, stripped_text: str, new_tool_id: Callable[[], str]) -> Reply:
    """The answer to ``turn``; ``stripped_text`` is the user text without directives."""
    s = script or Script()
    if turn.tool_results is not None:
        default = TOOL_RESULT_PREFIX + "\n".join(turn.tool_results)[:ECHO_LIMIT]
    else:
        default = echo_text(stripped_text)
    if s.words is not None:
        text: str | None = filler(s.words)
    elif s.text is not None:
        text = s.text
    else:
        text = None if s.tool_calls else default
    thinking = s.thinking
    if thinking is None and turn.auto_thinking:
        thinking = AUTO_THINKING
    calls = [Call(c.id or new_tool_id(), c.name, c.input, orjson.dumps(c.input).decode()) for c in s.tool_calls]
    stop_reason = s.stop_reason or ("tool_use" if calls else "end_turn")
    stop_sequence = None
    if s.stop_reason is None and text and turn.stop_sequences:
        text, stop_sequence = _cut_at_stop(text, turn.stop_sequences)
        if stop_sequence is not None:
            stop_reason, calls = "stop_sequence", []
    think_words = count_words(thinking)
    output = count_words(text) + think_words + sum((len(c.name) + len(c.arguments) + 3) // 4 for c in calls)
    output = max(1, output)
    if s.stop_reason is None and turn.max_tokens is not None and output > turn.max_tokens:
        keep = max(0, turn.max_tokens - think_words)
        text = "".join(split_pieces(text or "")[:keep]).rstrip()
        if not text and thinking:
            text = None
        calls, stop_reason, stop_sequence, output = [], "max_tokens", None, turn.max_tokens
    u = s.usage
    usage = Usage(
        input_tokens=u.get("input_tokens", turn.input_tokens),
        output_tokens=u.get("output_tokens", output),
        cache_read_tokens=u.get("cache_read_input_tokens", 0),
        cache_write_tokens=u.get("cache_creation_input_tokens", 0),
        reasoning_tokens=u.get("reasoning_tokens", think_words),
    )
    return Reply(
        text=text,
        thinking=thinking,
        signature=sign(thinking) if thinking is not None else None,
        calls=calls,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage,
        stall=s.stall,
        break_after=s.break_after,
        end_after=s.end_after,
        body=s.body,
        error=s.error,
        quirks=s.quirks,
        headers=s.headers,
    )


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    best, which = -1, None
    for seq in stops:
        if not seq:
            continue
        at = text.find(seq)
        if at >= 0 and (best < 0 or at < best):
            best, which = at, seq
    return (text[:best], which) if which is not None else (text, None)
