"""The four upstream kinds of the matrix, and how to read what the fake upstream recorded.

Each :class:`Upstream` names the model ``tests/conftest.gateway_config`` routes to a
provider of that kind, the endpoint of the fake the gateway must hit, and how to read a
recorded request in the upstream's own wire shape (tool results, images, the fake's
input-token formula from ``modelgate.testing.reply``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from modelgate.protocols.gemini.fields import get
from modelgate.testing import fake_anthropic, fake_gemini
from modelgate.testing.reply import estimate_tokens

ANTHROPIC = "anthropic"
OPENAI = "openai"
COMPATIBLE = "openai-compatible"
GEMINI = "gemini"

DOORS = ("anthropic", "openai_chat", "openai_responses", "gemini")
KINDS = (ANTHROPIC, OPENAI, COMPATIBLE, GEMINI)

#: (front door, upstream kind) pairs where the upstream speaks the client's protocol.
PASSTHROUGH = frozenset(
    {
        ("anthropic", ANTHROPIC),
        ("openai_chat", OPENAI),
        ("openai_chat", COMPATIBLE),
        ("openai_responses", OPENAI),
        ("gemini", GEMINI),
    }
)

#: The API version google-genai puts in its URLs (a Gemini passthrough keeps the client's).
GENAI_VERSION = "v1"


@dataclass(frozen=True)
class Upstream:
    kind: str
    #: The model name the client asks for.
    model: str
    #: The id the upstream gets (``qwen-local`` is rewritten by the config).
    upstream_model: str

    def path(self, door: str, *, stream: bool) -> str:
        """The fake's endpoint the gateway must call for a client of ``door``."""
        if self.kind == ANTHROPIC:
            return "/v1/messages"
        if self.kind == GEMINI:
            version = GENAI_VERSION if door == "gemini" else "v1beta"
            method = "streamGenerateContent" if stream else "generateContent"
            return f"/{version}/models/{self.upstream_model}:{method}"
        if self.kind == OPENAI and door == "openai_responses":
            return "/v1/responses"
        return "/v1/chat/completions"

    def protocol(self, door: str) -> str:
        """The wire protocol spoken upstream for a client of ``door``."""
        if self.kind == ANTHROPIC:
            return "anthropic"
        if self.kind == GEMINI:
            return "gemini"
        return "openai_responses" if (self.kind == OPENAI and door == "openai_responses") else "openai_chat"

    # ------------------------------------------------------------------ usage

    def ir_usage(self, i: int, o: int, r: int, w: int) -> tuple[int, int, int, int]:
        """What the gateway can know of a fake answer scripted with ``usage`` (input, output,
        cache read, cache write), after the upstream encodes it in its own shape.

        Chat Completions and Gemini report no cache writes: the fake (like OpenAI and Google)
        counts them inside the prompt (``prompt_tokens`` / ``promptTokenCount`` =
        input + cache read + cache write), so decoding gives input + writes as plain input.
        """
        if self.kind == ANTHROPIC:
            return i, o, r, w
        return i + w, o, r, 0

    def ir_usage_for(self, door: str, i: int, o: int, r: int, w: int) -> tuple[int, int, int, int]:
        """:meth:`ir_usage`, for the endpoint a client of ``door`` reaches: OpenAI's Responses
        API (the Responses passthrough) reports ``input_tokens_details.cache_write_tokens``."""
        if self.protocol(door) == "openai_responses":
            return i, o, r, w
        return self.ir_usage(i, o, r, w)


def input_tokens(protocol: str, body: dict[str, Any]) -> int:
    """The fake's deterministic input count for the request body it received."""
    if protocol == "anthropic":
        return fake_anthropic.input_tokens(body)
    if protocol == "gemini":
        return fake_gemini.input_tokens(body)
    if protocol == "openai_responses":
        return estimate_tokens([body.get("instructions"), body["input"], body.get("tools")])
    return estimate_tokens([body["messages"], body.get("tools")])


UPSTREAMS = {
    ANTHROPIC: Upstream(ANTHROPIC, "claude-sonnet-4-6", "claude-sonnet-4-6"),
    OPENAI: Upstream(OPENAI, "gpt-4o", "gpt-4o"),
    COMPATIBLE: Upstream(COMPATIBLE, "qwen-local", "qwen2.5:0.5b"),
    GEMINI: Upstream(GEMINI, "gemini-2.5-flash", "gemini-2.5-flash"),
}


# --------------------------------------------------------------------------- reading the recording


def b64decode_any(data: str) -> bytes:
    """Base64 in either alphabet (google-genai sends url-safe)."""
    return base64.urlsafe_b64decode(data.replace("+", "-").replace("/", "_") + "=" * (-len(data) % 4))


def tool_results(protocol: str, body: dict[str, Any]) -> list[tuple[str | None, str | None, Any]]:
    """(call id, function name where the shape has one, result) of every tool result of the
    last user turn, read in the upstream's own wire shape (and only there)."""
    if protocol == "anthropic":
        last = body["messages"][-1]
        assert last["role"] == "user"
        return [
            (b["tool_use_id"], None, _anthropic_text(b["content"]))
            for b in last["content"]
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
    if protocol == "openai_chat":
        msgs = body["messages"]
        return [(m["tool_call_id"], None, m["content"]) for m in msgs if m.get("role") == "tool"]
    if protocol == "openai_responses":
        items = body["input"]
        return [(it["call_id"], None, it["output"]) for it in items if it.get("type") == "function_call_output"]
    contents = get(body, "contents")
    last = contents[-1]
    assert get(last, "role") in (None, "user")
    out = []
    for part in get(last, "parts"):
        fr = get(part, "functionResponse")
        if fr is not None:
            out.append((get(fr, "id"), get(fr, "name"), get(fr, "response")))
    return out


def _anthropic_text(content: Any) -> Any:
    """A ``tool_result``'s content, a string or text blocks, as its text."""
    if isinstance(content, list):
        assert all(b["type"] == "text" for b in content), content
        return "".join(b["text"] for b in content)
    return content


def call_id(protocol: str, call: dict[str, Any]) -> str | None:
    """The id a tool result must quote to answer ``call`` (from :func:`tool_calls_sent_back`)."""
    if protocol == "openai_responses":
        return call["call_id"]
    if protocol == "gemini":
        return get(get(call, "functionCall"), "id")
    return call["id"]


def tool_calls_sent_back(protocol: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The assistant's function calls as the upstream got them back on the second turn."""
    if protocol == "anthropic":
        return [
            b for m in body["messages"] if m["role"] == "assistant" for b in m["content"] if b["type"] == "tool_use"
        ]
    if protocol == "openai_chat":
        return [c for m in body["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
    if protocol == "openai_responses":
        return [it for it in body["input"] if it.get("type") == "function_call"]
    return [
        part
        for c in get(body, "contents")
        if get(c, "role") == "model"
        for part in get(c, "parts")
        if get(part, "functionCall")
    ]


def images(protocol: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(media type, base64 data) of every image in the request, in the upstream's own shape."""
    found: list[tuple[str, str]] = []
    if protocol == "anthropic":
        for m in body["messages"]:
            for b in m["content"] if isinstance(m["content"], list) else ():
                if b.get("type") == "image":
                    assert b["source"]["type"] == "base64"
                    found.append((b["source"]["media_type"], b["source"]["data"]))
    elif protocol == "openai_chat":
        for m in body["messages"]:
            for p in m["content"] if isinstance(m.get("content"), list) else ():
                if p.get("type") == "image_url":
                    found.append(_data_url(p["image_url"]["url"]))
    elif protocol == "openai_responses":
        items = body["input"] if isinstance(body["input"], list) else []
        for it in items:
            for p in it.get("content") if isinstance(it.get("content"), list) else ():
                if p.get("type") == "input_image":
                    found.append(_data_url(p["image_url"]))
    else:
        for c in get(body, "contents"):
            for part in get(c, "parts"):
                inline = get(part, "inlineData")
                if inline is not None:
                    found.append((get(inline, "mimeType"), get(inline, "data")))
    return found


def _data_url(url: str) -> tuple[str, str]:
    head, _, data = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), url[:40]
    return head[len("data:") : -len(";base64")], data


def system_text(protocol: str, body: dict[str, Any]) -> str | None:
    """The system prompt as the upstream got it, in its own slot."""
    if protocol == "anthropic":
        system = body.get("system")
        return _anthropic_text(system) if system is not None else None
    if protocol == "openai_chat":
        first = body["messages"][0]
        return first["content"] if first["role"] in ("system", "developer") else None
    if protocol == "openai_responses":
        return body.get("instructions")
    instruction = get(body, "systemInstruction")
    if instruction is None:
        return None
    return "".join(get(p, "text") for p in get(instruction, "parts"))


def output_limit(protocol: str, body: dict[str, Any]) -> int | None:
    """The output-token cap as the upstream got it, in its own field."""
    if protocol == "anthropic":
        return body["max_tokens"]
    if protocol == "openai_chat":
        return body.get("max_completion_tokens") or body.get("max_tokens")
    if protocol == "openai_responses":
        return body.get("max_output_tokens")
    return get(get(body, "generationConfig") or {}, "maxOutputTokens")
