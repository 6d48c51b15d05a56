"""The answer tap of Gemini ``generateContent`` / ``streamGenerateContent`` (see
:mod:`modelgate.protocols.tap`).

A Gemini stream is either SSE (``?alt=sse``: ``data: {GenerateContentResponse}`` frames, no
terminator) or, without ``alt=sse``, one JSON array whose elements arrive as
:class:`~modelgate.protocols.gemini.jsonarray.ArrayCutter` cuts them (a chunk may start with
``[`` or a ``,`` and whitespace, holds whole elements, the last ends with ``]``). Either way:

- ``usageMetadata`` rides on every chunk and is cumulative: the last one wins. The tap only
  remembers the last chunk that holds it (one substring check and a reference per chunk) and
  decodes it when ``usage`` is read (with the codec's
  :func:`~modelgate.protocols.gemini.upstream_response.decode_usage`);
- ``modelVersion`` → ``model``, likewise read lazily from the first chunk that names it;
- a chunk holding ``"finishReason"`` (a candidate's, on the last chunk only) or
  ``"blockReason"`` (a prompt blocked outright, no candidate) is parsed at once: ``ended``, and
  ``stop_reason`` as sent (``STOP``, ``MAX_TOKENS``, ``SAFETY``…); so is one holding
  ``"error"``: an element or frame ``{"error": {...}}`` → ``failed``.

So a chunk costs three substring checks (four until the model is known); a stream parses one
chunk (its last) plus the one behind ``usage`` when it is read. Field names are read in both
spellings (camelCase, as Google answers, or snake_case) once parsed; the checks look for
camelCase, which is what Google sends.

Non-streamed: a ``GenerateContentResponse`` JSON (or a whole streamed array body).
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.protocols.gemini.errors import error_from_object
from modelgate.protocols.gemini.fields import get
from modelgate.protocols.gemini.upstream_response import decode_usage
from modelgate.protocols.tap import AnswerTap, frame_data, frames_with, last_frame_with, load

_USAGE = b'"usageMetadata"'
_MODEL = b'"modelVersion"'
_REASON = b'Reason"'  # one check for both of the two below
_FINISH = (b'"finishReason"', b'"blockReason"')
_ERROR = b'"error"'
_ARRAY_EDGES = b" \t\r\n[],"


class GeminiTap(AnswerTap):
    """Usage, finish reason, model and the end of one Gemini answer; ``sse``: the stream is SSE
    (``alt=sse``) rather than a JSON array."""

    # Each ``functionCall`` part (Gemini writes its JSON with spaces: only the key is matched).
    STREAM_TOOL_CALL = b'"functionCall"'
    WHOLE_TOOL_CALL = b'"functionCall"'

    _plain_usage = False

    def __init__(self, sse: bool = True) -> None:
        super().__init__()
        self.sse = sse
        self._usage_raw: bytes | None = None  # the last chunk holding usage, not decoded yet
        self._model_raw: bytes | None = None  # the first chunk naming the model, not decoded yet

    @property
    def usage(self) -> ir.Usage | None:
        """The last ``usageMetadata`` seen, decoded now if it was not yet."""
        self._catch_up()
        raw = self._usage_raw
        if raw is not None:
            self._usage_raw = None
            found = self._last(raw, _USAGE, "usageMetadata")
            if found is not None:
                self._tap_usage = decode_usage(get(found, "usageMetadata"))
        return self._tap_usage

    @usage.setter
    def usage(self, value: ir.Usage | None) -> None:
        self._tap_usage, self._usage_raw = value, None

    @property
    def model(self) -> str | None:
        """The first ``modelVersion`` seen, decoded now if it was not yet."""
        self._catch_up()
        raw = self._model_raw
        if raw is not None:
            self._model_raw = None
            for element in self._elements(raw, (_MODEL,)):
                self._model_of(element)
                if self._tap_model is not None:
                    break
        return self._tap_model

    @model.setter
    def model(self, value: str | None) -> None:
        self._tap_model, self._model_raw = value, None

    def feed(self, chunk: bytes) -> bytes:
        """An SSE stream is read lazily (see :class:`AnswerTap`); a JSON array is read as it
        comes, because the cutter hands its separators over as chunks of their own and the
        last elements may lie further back than the kept chunks reach."""
        if self.sse:
            return super().feed(chunk)
        self._read(chunk)
        return chunk

    def _read(self, chunk: bytes) -> None:
        # ``find`` rather than ``in``: see modelgate.protocols.tap.
        if chunk.find(_USAGE) >= 0:
            self._usage_raw = chunk
        if self._model_raw is None and self._tap_model is None and chunk.find(_MODEL) >= 0:
            self._model_raw = chunk
        if (chunk.find(_REASON) >= 0 and (_FINISH[0] in chunk or _FINISH[1] in chunk)) or chunk.find(_ERROR) >= 0:
            for element in self._elements(chunk, (*_FINISH, _ERROR)):
                self._element(element)

    def whole(self, body: bytes) -> bool:
        answer = load(body)
        if not isinstance(answer, (dict, list)):
            return False
        for element in answer if isinstance(answer, list) else [answer]:
            if isinstance(element, dict):
                self._element(element)
        return True

    # ----------------------------------------------------------------------- internals

    def _elements(self, chunk: bytes, needles: tuple[bytes, ...]) -> list[dict[str, Any]]:
        """The ``GenerateContentResponse`` objects of one chunk that hold one of ``needles`` (in
        SSE, only their frames are parsed; a JSON-array chunk is parsed whole)."""
        if not self.sse:
            inner = chunk.strip(_ARRAY_EDGES)
            found = load(b"[" + inner + b"]") if inner else None
            return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
        return [e for frame in frames_with(chunk, needles) for e in self._frame(frame)]

    @staticmethod
    def _frame(frame: bytes) -> list[dict[str, Any]]:
        found = load(frame_data(frame))
        if isinstance(found, dict):
            return [found]
        return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []

    def _last(self, chunk: bytes, needle: bytes, key: str) -> dict[str, Any] | None:
        """The last object of ``chunk`` that holds ``key`` (in SSE, only that frame is parsed)."""
        if self.sse:
            frame = last_frame_with(chunk, needle)
            elements = self._frame(frame) if frame is not None else []
        else:
            elements = self._elements(chunk, (needle,))
        found: dict[str, Any] | None = None
        for element in elements:
            if get(element, key) is not None:
                found = element
        return found

    def _model_of(self, element: dict[str, Any]) -> None:
        version = get(element, "modelVersion")
        if self._tap_model is None and isinstance(version, str) and version:
            self._tap_model = version

    def _element(self, element: dict[str, Any]) -> None:
        if isinstance(get(element, "error"), dict):
            self.failed = True
            self.error = error_from_object(element, None)
            return
        self._model_of(element)
        usage = get(element, "usageMetadata")
        if isinstance(usage, dict):
            self._tap_usage = decode_usage(usage)
            self._usage_raw = None  # this is the newest: nothing older is left to decode
        candidates = get(element, "candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            reason = get(candidate, "finishReason") if isinstance(candidate, dict) else None
            if isinstance(reason, str) and reason:
                self.stop_reason = reason
                self.ended = True
        feedback = get(element, "promptFeedback")
        if not candidates and isinstance(feedback, dict):
            reason = get(feedback, "blockReason")
            if isinstance(reason, str) and reason:
                self.stop_reason = reason
                self.ended = True
