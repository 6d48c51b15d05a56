"""An OpenAI Chat Completions stream, collected into the ``chat.completion`` the non-streamed API returns.

Forced internal streaming (``providers[].force_stream``, decision 0003) sends a client's
non-streamed request upstream with ``"stream": true`` and ``stream_options.include_usage: true``
(:func:`with_stream`, merged with the client's own ``stream_options``); the client still gets
the one JSON object it asked for. :class:`CompletionCollector` builds it from the
``chat.completion.chunk`` frames the way the ``openai`` SDK accumulates a stream:

- ``id``, ``created``, ``model`` from the first chunk, ``object: "chat.completion"``;
  ``system_fingerprint`` and ``service_tier`` where a chunk carries them (the last non-null);
- ``choices`` per ``index``, in index order: ``message`` with ``role`` (``assistant`` unless a
  delta says otherwise), ``content`` and ``refusal`` (the deltas' strings joined, null when
  none came), other string fields joined too (``reasoning_content``, vLLM's ``reasoning``),
  ``tool_calls`` by their index (``id``, ``type``, ``function.name``,
  ``function.arguments`` joined; omitted when none), the legacy ``function_call`` likewise,
  ``annotations`` when a delta had any;
  ``logprobs`` null, or its ``content`` / ``refusal`` lists joined; the last ``finish_reason``;
- ``usage`` from the chunk that carries it (the usage-only chunk before ``[DONE]``); absent when
  none came.

A ``{"error": {...}}`` frame (or an ``event: error`` one) raises the upstream's error
(:func:`error_from_object`); a stream without a ``finish_reason`` and the ``[DONE]`` after it,
or whose frames are not the protocol's, raises :class:`UpstreamUnavailable` (502). Either way
nothing has reached the client, so the attempt is retried or falls back.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.openai_chat.errors import error_from_object

_INCLUDE_USAGE = b'"stream":true,"stream_options":{"include_usage":true},'
_DONE = b"[DONE]"
#: The keys of a chunk's choice that the collected choice is built from.
_CHOICE_KEYS = frozenset({"index", "delta", "logprobs", "finish_reason"})


def with_stream(body: bytes, parsed: dict[str, Any]) -> bytes:
    """``body`` (the JSON object ``parsed``) with ``"stream": true`` and
    ``stream_options.include_usage: true``: spliced in after the opening brace when the client
    wrote neither key (every other byte kept), else the body re-serialised (key order kept)
    with the client's ``stream_options`` merged."""
    if "stream" not in parsed and "stream_options" not in parsed:
        start = body.find(b"{") + 1
        if start > 0:
            return body[:start] + _INCLUDE_USAGE + body[start:]
    data = orjson.loads(body)
    options = data.get("stream_options")
    options = options if isinstance(options, dict) else {}
    return orjson.dumps({**data, "stream": True, "stream_options": {**options, "include_usage": True}})


class _Choice:
    __slots__ = ("annotations", "extra", "finish_reason", "logprobs", "others", "role", "strings", "tool_calls")

    def __init__(self) -> None:
        self.role = "assistant"
        #: content, refusal and other string fields → their pieces.
        self.strings: dict[str, list[str]] = {}
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.annotations: list[Any] | None = None
        self.logprobs: dict[str, Any] | None = None
        self.finish_reason: Any = None
        #: Other non-string delta keys: the last non-null, into the message.
        self.extra: dict[str, Any] = {}
        #: Other keys of the choice (vLLM's ``stop_reason`` …): the last non-null.
        self.others: dict[str, Any] = {}

    def delta(self, delta: dict[str, Any]) -> None:
        for name, value in delta.items():
            if value is None:
                continue
            if name == "role":
                self.role = value
            elif name == "tool_calls":
                for call in value:
                    self._tool_call(call)
            elif name == "function_call" and isinstance(value, dict):  # the legacy single call
                self._function_call(value)
            elif name == "annotations":
                self.annotations = (self.annotations or []) + list(value)
            elif isinstance(value, str):
                self.strings.setdefault(name, []).append(value)
            else:
                self.extra[name] = value

    def _tool_call(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index", len(self.tool_calls))
        call = self.tool_calls.get(index)
        if call is None:
            call = self.tool_calls[index] = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        if fragment.get("id"):
            call["id"] = call["id"] or fragment["id"]
        if fragment.get("type"):
            call["type"] = fragment["type"]
        function = fragment.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str) and name and not call["function"]["name"]:
                call["function"]["name"] = name
            arguments = function.get("arguments")
            if arguments is not None:
                if not isinstance(arguments, str):  # Ollama's whole object
                    arguments = orjson.dumps(arguments).decode()
                call["function"]["arguments"] += arguments

    def _function_call(self, fragment: dict[str, Any]) -> None:
        call = self.extra.setdefault("function_call", {"name": "", "arguments": ""})
        if isinstance(fragment.get("name"), str) and not call["name"]:
            call["name"] = fragment["name"]
        if isinstance(fragment.get("arguments"), str):
            call["arguments"] += fragment["arguments"]

    def add_logprobs(self, logprobs: dict[str, Any]) -> None:
        if self.logprobs is None:
            self.logprobs = {}
        for name, value in logprobs.items():
            before = self.logprobs.get(name)
            if isinstance(value, list) and isinstance(before, list):
                before.extend(value)
            elif isinstance(value, list):
                self.logprobs[name] = list(value)
            elif value is not None or name not in self.logprobs:
                self.logprobs[name] = value

    def message(self) -> dict[str, Any]:
        strings = {name: "".join(pieces) for name, pieces in self.strings.items()}
        message: dict[str, Any] = {
            "role": self.role,
            "content": strings.pop("content", None),
            "refusal": strings.pop("refusal", None),
        }
        message.update(strings)
        message.update(self.extra)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[k] for k in sorted(self.tool_calls)]
        if self.annotations is not None:
            message["annotations"] = self.annotations
        return message


class CompletionCollector:
    """Feeds on a stream's chunks, cut anywhere; :meth:`finish` returns the completion JSON."""

    __slots__ = ("_choices", "_chunks", "_done", "_finished", "_head", "_tail")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._head: dict[str, Any] | None = None
        #: ``usage``, ``service_tier``, ``system_fingerprint`` as the chunks carry them.
        self._tail: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}
        self._finished = False
        self._done = False

    def feed(self, chunk: bytes) -> None:
        """Keep one chunk: the stream is read once, when it has ended."""
        self._chunks.append(chunk)

    def finish(self) -> bytes:
        """The ``chat.completion`` JSON, as the non-streamed API writes it; raises the
        upstream's error, or when the stream did not end as the protocol promises."""
        stream = b"".join(self._chunks)
        self._chunks.clear()
        if stream.find(b"\r") >= 0:
            stream = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        for frame in stream.split(b"\n\n"):
            self._frame(frame.strip(b"\n"))
        if self._head is None or not self._finished or not self._done:
            raise UpstreamUnavailable("upstream stream ended before a finish_reason and [DONE]")
        completion = dict(self._head)
        completion["choices"] = [
            {
                "index": index,
                "message": choice.message(),
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
                **choice.others,
            }
            for index, choice in sorted(self._choices.items())
        ]
        for name in ("usage", "service_tier", "system_fingerprint"):
            if self._tail.get(name) is not None:
                completion[name] = self._tail[name]
        return orjson.dumps(completion)

    def _frame(self, frame: bytes) -> None:
        error_event = False
        data_lines = []
        for line in frame.split(b"\n"):
            if line.startswith(b"data:"):
                data_lines.append(line[5:].strip())
            elif line.startswith(b"event:"):
                error_event = line[6:].strip() == b"error"
        if not data_lines:
            return
        data = b"\n".join(data_lines)
        if data == _DONE:
            self._done = self._finished
            return
        try:
            chunk = orjson.loads(data)
            if not isinstance(chunk, dict):
                raise TypeError("not an object")
            if not (error_event or chunk.get("error") is not None):
                self._chunk(chunk)
                return
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise UpstreamUnavailable(f"upstream sent a stream chunk that is not the protocol's ({e!r:.80})") from None
        raise error_from_object(chunk, None)

    def _chunk(self, chunk: dict[str, Any]) -> None:
        if self._head is None:
            self._head = {
                "id": chunk.get("id"),
                "object": "chat.completion",
                "created": chunk.get("created"),
                "model": chunk.get("model"),
            }
        for name in ("usage", "service_tier", "system_fingerprint"):
            value = chunk.get(name)
            if value is not None:
                self._tail[name] = value
        for raw in chunk.get("choices") or ():
            index = raw.get("index", 0)
            choice = self._choices.get(index)
            if choice is None:
                choice = self._choices[index] = _Choice()
            delta = raw.get("delta")
            if isinstance(delta, dict):
                choice.delta(delta)
            logprobs = raw.get("logprobs")
            if isinstance(logprobs, dict):
                choice.add_logprobs(logprobs)
            for name, value in raw.items():
                if value is not None and name not in _CHOICE_KEYS:
                    choice.others[name] = value
            if raw.get("finish_reason") is not None:
                choice.finish_reason = raw["finish_reason"]
                self._finished = True


__all__ = ["CompletionCollector", "with_stream"]
