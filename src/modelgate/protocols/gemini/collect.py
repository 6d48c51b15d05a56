"""A Gemini ``streamGenerateContent`` stream, collected into the ``GenerateContentResponse``
the non-streamed ``generateContent`` returns.

Forced internal streaming (``providers[].force_stream``) sends a client's non-streamed
``:generateContent`` upstream as ``:streamGenerateContent?alt=sse`` (same body), so that a hung
upstream is found by the first-byte timeout; the client still gets the one JSON answer it
asked for. Each SSE frame is a whole ``GenerateContentResponse``; :class:`ResponseCollector`
lays them over one another the way the streamed chunks add up:

- per candidate ``index``: ``content.parts`` appended in order, consecutive text parts of
  the same kind (``thought`` or not) joined into one — a part that carries a
  ``thoughtSignature`` keeps it, and ends the text it closes (Gemini streams the signature
  of an answer's text on a last, empty text part: it lands on the text, as the non-streamed
  API puts it); an empty text part that joins nothing and carries nothing is dropped;
  ``functionCall`` and every other part kept as they come. ``content.role``,
  ``finishReason`` and every other candidate field (``safetyRatings``, ``citationMetadata``,
  ``groundingMetadata``, ``finishMessage`` …): the last chunk carrying it wins;
- the answer's own fields (``usageMetadata``, cumulative; ``modelVersion``; ``responseId``;
  ``promptFeedback``, sent on the first chunk only): the last chunk carrying each wins, in the
  order they first came; ``candidates`` stay sorted by index.

Field names are read in both spellings (camelCase, as Google answers, or snake_case) and
written back as they came. The stream is read once it has ended (nothing reaches the client
before), in one pass. A frame ``{"error": {...}}`` raises the upstream's error (Google's
envelope read by :func:`~modelgate.protocols.gemini.errors.error_from_object`: its status
gives the HTTP status); a stream that ends before every candidate has its ``finishReason``
(or a prompt blocked outright, ``promptFeedback.blockReason`` without candidates), or whose
frames are not ``GenerateContentResponse`` objects, raises :class:`UpstreamUnavailable` (502).
Either way nothing has reached the client, so the attempt is retried or falls back.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.gemini.errors import error_from_object
from modelgate.protocols.gemini.fields import get
from modelgate.protocols.tap import frame_data

#: The keys a text part may have and still be joined with its neighbours.
_TEXT_KEYS = frozenset({"text", "thought", "thoughtSignature", "thought_signature"})
_CANDIDATES = ("candidates",)


def _signature(part: dict[str, Any]) -> Any:
    return get(part, "thoughtSignature")


def _joinable(part: dict[str, Any]) -> bool:
    return isinstance(part.get("text"), str) and part.keys() <= _TEXT_KEYS


class _Candidate:
    """One candidate being collected: its fields as the chunks lay them, and its parts."""

    __slots__ = ("content", "fields", "parts", "texts")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.content: dict[str, Any] = {}
        self.parts: list[dict[str, Any]] = []
        #: The pieces of the last part's text while it may still grow (joined once, at the end).
        self.texts: list[str] = []

    def add(self, candidate: dict[str, Any]) -> None:
        for name, value in candidate.items():
            if name == "content":
                if not isinstance(value, dict):
                    raise ValueError("content")
                for key, field in value.items():
                    if key == "parts":
                        self.content.setdefault("parts", None)
                        if not isinstance(field, list):
                            raise ValueError("parts")
                        for part in field:
                            self._part(part)
                    else:
                        self.content[key] = field
            else:
                self.fields[name] = value

    def _part(self, part: Any) -> None:
        if not isinstance(part, dict):
            raise ValueError("part")
        parts = self.parts
        if _joinable(part):
            last = parts[-1] if parts else None
            if (
                last is not None
                and self.texts
                and _signature(last) is None
                and bool(get(last, "thought")) is bool(get(part, "thought"))
            ):
                self.texts.append(part["text"])
                for key, value in part.items():  # the signature that closes it, a thought flag
                    if key != "text":
                        last[key] = value
                return
            if not part["text"] and _signature(part) is None:
                return  # an empty text part: nothing to keep
            self._close()
            part = dict(part)
            parts.append(part)
            self.texts.append(part["text"])
            return
        self._close()
        parts.append(part)

    def _close(self) -> None:
        """Join the pieces of the last text part."""
        if self.texts:
            self.parts[-1]["text"] = "".join(self.texts)
            self.texts = []

    def whole(self) -> dict[str, Any]:
        """The candidate, as the non-streamed API writes it: content and finishReason first,
        index last."""
        self._close()
        out: dict[str, Any] = {}
        if self.content:
            content = dict(self.content)
            if "parts" in content:
                content["parts"] = self.parts
            out["content"] = content
        fields = self.fields
        for name in ("finishReason", "finish_reason"):
            if name in fields:
                out[name] = fields.pop(name)
        index = fields.pop("index", None)
        out.update(fields)
        if index is not None:
            out["index"] = index
        return out


class ResponseCollector:
    """Feeds on a stream's chunks, cut anywhere; :meth:`finish` returns the answer's JSON."""

    __slots__ = ("_candidates", "_chunks", "_response")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._response: dict[str, Any] = {}
        self._candidates: dict[int, _Candidate] = {}

    def feed(self, chunk: bytes) -> None:
        """Keep one chunk: the stream is read once it has ended."""
        self._chunks.append(chunk)

    def finish(self) -> bytes:
        """The ``GenerateContentResponse`` JSON; raises when the stream did not end as the
        protocol promises (or carried an error)."""
        stream = b"".join(self._chunks)
        self._chunks.clear()
        if stream.find(b"\r") >= 0:  # frames end CRLF CRLF, as Google writes them: read as LF
            stream = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        try:
            for response in self._responses(stream):
                self._add(response)
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # orjson's errors too
            raise UpstreamUnavailable(f"upstream sent a stream chunk that is not the protocol's ({e!r:.80})") from None
        if not self._ended():
            raise UpstreamUnavailable("upstream stream ended before its finishReason")
        response = self._response
        if "candidates" in response:
            response["candidates"] = [self._candidates[i].whole() for i in sorted(self._candidates)]
        return orjson.dumps(response)

    @staticmethod
    def _responses(stream: bytes) -> list[Any]:
        """The stream's ``GenerateContentResponse`` objects: its SSE frames' data (or, should
        it be a JSON array after all, its elements)."""
        if stream.lstrip().startswith(b"["):
            found = orjson.loads(stream)
            if not isinstance(found, list):
                raise ValueError("not an array")
            return found
        out = []
        for frame in stream.split(b"\n\n"):
            data = frame_data(frame.strip(b"\n"))
            if data is not None and data.strip():
                out.append(orjson.loads(data))
        return out

    def _add(self, response: Any) -> None:
        if not isinstance(response, dict):
            raise ValueError("not an object")
        if isinstance(get(response, "error"), dict):
            raise error_from_object(response, None)
        kept = self._response
        for name, value in response.items():
            if name == "candidates":
                kept.setdefault(name, None)  # its place in the answer's key order
                if not isinstance(value, list):
                    raise ValueError("candidates")
                for position, candidate in enumerate(value):
                    if not isinstance(candidate, dict):
                        raise ValueError("candidate")
                    index = get(candidate, "index", position)
                    if not isinstance(index, int):
                        raise ValueError("index")
                    collected = self._candidates.get(index)
                    if collected is None:
                        self._candidates[index] = collected = _Candidate()
                    collected.add(candidate)
            else:
                kept[name] = value

    def _ended(self) -> bool:
        candidates = self._candidates
        if candidates:
            return all(get(c.fields, "finishReason") for c in candidates.values())
        feedback = get(self._response, "promptFeedback")
        return isinstance(feedback, dict) and bool(get(feedback, "blockReason"))
