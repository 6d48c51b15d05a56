"""The answer tap of OpenAI Chat Completions (see :mod:`modelgate.protocols.tap`), and the
request side of learning a stream's usage (decision 0002, ``docs/decisions/0002-chat-stream-usage.md``).

Streamed (``data: {chat.completion.chunk}`` frames, ``data: [DONE]`` last): a chunk is only
looked into when it holds ``"usage":{`` (a usage *object*: the ``"usage":null`` every chunk
carries under ``include_usage`` does not count) or ``"finish_reason":"`` (a non-null finish
reason), with or without the space after the colon, ``[DONE]``, or the word ``error`` (an
``{"error": ...}`` object or an ``event: error`` line), and then only its frames that hold one
are parsed. Inside JSON strings a quote is always escaped, so the quoted keys can only be real
members; ``[DONE]`` and ``error`` can be text, so they are checked again per frame.

- ``usage`` from any chunk whose ``usage`` is an object (the last one wins): the ``choices: []``
  chunk before ``[DONE]``, or ``choices: null``, or the finish chunk itself on some servers;
- ``stop_reason``: a non-null ``finish_reason`` on any choice; ``ended``: ``data: [DONE]``
  after one (a server that never sends ``[DONE]`` leaves ``ended`` False: ``stop_reason`` then
  tells that the model did finish);
- ``failed``: a ``{"error": {...}}`` frame or an ``event: error`` frame;
- ``model``: from the first chunk that names one (later chunks are not parsed for it).

Non-streamed: the ``chat.completion`` JSON (``usage`` with ``prompt_tokens_details.cached_tokens``
and ``completion_tokens_details.reasoning_tokens``, ``model``, a non-null ``finish_reason`` →
``ended``); ``{"error": ...}`` → ``failed``.

**Hiding the usage the gateway asked for.** A Chat stream carries usage only when the request
says ``stream_options.include_usage: true``. :func:`request_usage` adds it to a streamed request
that lacks it; the tap of that answer is then built with ``hide_usage=True`` and removes from
the forwarded bytes exactly what the option added (OpenAI's documented behaviour: one more chunk
before ``[DONE]`` whose ``choices`` is empty and which carries the usage, and ``"usage": null``
on every other chunk):

- the usage-only chunk (``choices`` ``[]``, null or absent, ``usage`` an object) is dropped,
  frame and blank line, after its usage has been read;
- the ``"usage":null`` member is removed from every other chunk: ``,"usage":null`` (OpenAI's
  compact JSON, one ``bytes.replace`` per chunk), and, on the slow path, any spacing
  (``, "usage": null``) or the member first in its object;
- usage that rides on the finish chunk (a server quirk) is read, and that chunk forwarded as it
  is: the server would have sent it so without the option too.

``feed`` may then return fewer bytes than it got, possibly none (when a chunk held only the
usage chunk): a caller writes nothing for an empty result.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modelgate.protocols.openai_chat.errors import error_from_object
from modelgate.protocols.openai_chat.usage import decode_usage
from modelgate.protocols.tap import AnswerTap, frame_data, frame_event, load, split_frames

_USAGE = b'"usage"'
_USAGE_OBJECT = (b'"usage":{', b'"usage": {')
_FINISH_KEY = b'"finish_reason"'
_FINISH = (b'"finish_reason":"', b'"finish_reason": "')
_DONE = b"[DONE]"
_ERROR = b'"error"'
_ERROR_WORD = b"error"  # ``"error"`` and ``event: error`` in one check
_EVENT = b"event:"
_MODEL = b'"model"'
_NULL_USAGE = b',"usage":null'
#: ``"usage": null`` members in any other spelling: after a comma, or first in their object.
_NULL_USAGE_ANY = re.compile(rb'\s*,\s*"usage"\s*:\s*null\b|(?<=\{)\s*"usage"\s*:\s*null\s*(?:,\s*)?')
_INCLUDE_USAGE = b'"stream_options":{"include_usage":true},'


def request_usage(raw: bytes, body: dict[str, Any]) -> bytes | None:
    """The request bytes with ``stream_options.include_usage: true`` added, when ``body`` (the
    parsed ``raw``, as it goes upstream) streams and did not ask for usage; None when nothing
    needs adding (not streaming, or the client asked already). Its answer's tap must then hide
    what the option adds (``ChatTap(hide_usage=True)``).

    Without a ``stream_options`` key the option is spliced in right after the opening ``{``:
    every other byte stays as the client sent it. A ``stream_options`` object without
    ``include_usage: true`` (or ``null``) is merged and the body re-serialised (orjson keeps key
    order and every string exactly). A ``stream_options`` that is neither is left for the
    upstream to refuse, as it would have.
    """
    if body.get("stream") is not True:
        return None
    if "stream_options" not in body:
        start = raw.find(b"{") + 1
        if start <= 0:
            return None
        return raw[:start] + _INCLUDE_USAGE + raw[start:]
    options = body["stream_options"]
    if options is None:
        options = {}
    if not isinstance(options, dict) or options.get("include_usage") is True:
        return None
    return orjson.dumps({**body, "stream_options": {**options, "include_usage": True}})


class ChatTap(AnswerTap):
    """Usage, finish reason, model and the end of one Chat Completions answer; with
    ``hide_usage``, also takes out of the stream what ``include_usage`` added (see above)."""

    # Each tool call's first delta (the one with its id and type), or its item in ``tool_calls``.
    STREAM_TOOL_CALL = b'"type":"function"'
    WHOLE_TOOL_CALL = b'"type":"function"'

    def __init__(self, hide_usage: bool = False) -> None:
        super().__init__()
        self.hide_usage = hide_usage
        self._finished = False  # a finish_reason was seen

    @property
    def rewrites(self) -> bool:
        return self.hide_usage

    def feed(self, chunk: bytes) -> bytes:
        """Read lazily (see :class:`AnswerTap`), unless hiding the usage: then every chunk is
        rewritten as it passes, and read at the same time."""
        if not self.hide_usage:
            return super().feed(chunk)
        if chunk.find(_NULL_USAGE) >= 0:
            chunk = chunk.replace(_NULL_USAGE, b"")
        if chunk.find(_USAGE) >= 0:  # a usage object, or a null one in another spelling
            return self._frames(chunk)
        return self._scan(chunk)

    def _read(self, chunk: bytes) -> None:
        # ``find`` rather than ``in`` (see modelgate.protocols.tap); a key is looked for once, and
        # its spellings only from where it is (OpenAI writes usage and finish_reason last).
        at = chunk.find(_USAGE)
        if at >= 0 and (chunk.find(_USAGE_OBJECT[0], at) >= 0 or chunk.find(_USAGE_OBJECT[1], at) >= 0):
            self._frames(chunk)
        else:
            self._scan(chunk)

    def _scan(self, chunk: bytes) -> bytes:
        """Read the frames of ``chunk`` if it may hold an end, an error or the model."""
        at = chunk.find(_FINISH_KEY)
        if (
            (at >= 0 and (chunk.find(_FINISH[0], at) >= 0 or chunk.find(_FINISH[1], at) >= 0))
            or chunk.find(_DONE) >= 0
            or chunk.find(_ERROR_WORD) >= 0
            or (self.model is None and chunk.find(_MODEL) >= 0)
        ):
            return self._frames(chunk)
        return chunk

    def whole(self, body: bytes) -> bool:
        completion = load(body)
        if not isinstance(completion, dict):
            return False
        if completion.get("error"):
            self._failed(completion)
            return True
        self._chunk(completion)
        self.ended = self._finished
        return True

    # ----------------------------------------------------------------------- internals

    def _failed(self, data: dict[str, Any]) -> None:
        self.failed = True
        self.error = error_from_object(data, None)

    def _frames(self, chunk: bytes) -> bytes:
        """The slow path: the frames of a chunk that hold something worth reading."""
        kept: list[bytes] = []
        changed = False
        for frame in split_frames(chunk):
            if self.hide_usage and _USAGE in frame and not self._usage_object(frame):
                hidden = _NULL_USAGE_ANY.sub(b"", frame)
                changed = changed or hidden != frame
                frame = hidden
            if self._read_frame(frame):
                kept.append(frame)
            else:
                changed = True
        return b"".join(kept) if changed else chunk

    @staticmethod
    def _usage_object(frame: bytes) -> bool:
        return _USAGE_OBJECT[0] in frame or _USAGE_OBJECT[1] in frame

    def _read_frame(self, frame: bytes) -> bool:
        """Read one frame if it holds something; False when it must not be forwarded."""
        if _EVENT in frame and frame_event(frame) == b"error":
            data = load(frame_data(frame))
            self._failed(data if isinstance(data, dict) else {})
            return True
        if not (
            self._usage_object(frame)
            or _FINISH[0] in frame
            or _FINISH[1] in frame
            or _ERROR in frame
            or _DONE in frame
            or (self.model is None and _MODEL in frame)
        ):
            return True
        data = frame_data(frame)
        if data is None:
            return True
        if data.strip() == _DONE:
            self.ended = self.ended or self._finished
            return True
        chunk = load(data)
        if not isinstance(chunk, dict):
            return True
        if chunk.get("error"):
            self._failed(chunk)
            return True
        self._chunk(chunk)
        choices = chunk.get("choices")
        usage_only = isinstance(chunk.get("usage"), dict) and not choices
        return not (self.hide_usage and usage_only)

    def _chunk(self, chunk: dict[str, Any]) -> None:
        """A parsed ``chat.completion.chunk`` (or ``chat.completion``)."""
        if self.model is None and isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = decode_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
                self.stop_reason = choice["finish_reason"]
                self._finished = True
