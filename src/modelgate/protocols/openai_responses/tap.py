"""The answer tap of the OpenAI Responses API (see :mod:`modelgate.protocols.tap`).

Streamed: every event carries ``type`` and an increasing ``sequence_number``. A chunk is only
looked into when it holds ``"response":`` (the events that carry the whole response object:
``response.created``, ``in_progress``, ``completed``, ``incomplete``, ``failed``…) or
``"error"`` (an ``error`` event; the response object's ``"error": null`` too); of those frames
only the first response event (while no response is known), the three final ones and
``error`` events (``"type":"error"``) are parsed:

- ``response``: the upstream's response object from its first event that carries one with an
  ``id`` (what a gateway needs to end a broken stream with the upstream's own
  ``response.failed``); ``created_at`` its creation time; ``next_sequence`` the last
  ``sequence_number`` seen + 1 (found with one ``rfind`` per chunk);
- ``response.completed`` / ``response.incomplete`` / ``response.failed`` → ``ended``, usage
  from its ``response.usage``, ``stop_reason`` = the final ``status`` (``completed``,
  ``incomplete``, ``failed``), ``model``; ``response.failed`` → ``failed`` too;
- an ``error`` event → ``failed`` (not ``ended``: the protocol's end is one of the three above).

Non-streamed: a ``response`` object (``status``, ``usage``, ``model``; a final status →
``ended``, ``failed`` → ``failed``); an ``{"error": {...}}`` envelope → ``failed``.
"""

from __future__ import annotations

import time
from typing import Any

from modelgate.protocols.openai_responses.errors import error_from_object
from modelgate.protocols.openai_responses.upstream_response import decode_usage
from modelgate.protocols.tap import AnswerTap, json_events, load

_RESPONSE = b'"response":'
_ERROR = b'"error"'
_ERROR_TYPE = (b'"type":"error"', b'"type": "error"')
_SEQUENCE = b'"sequence_number"'
_DIGITS = frozenset(b"0123456789")
_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_END_TYPES = tuple(b'"%s"' % end.encode() for end in sorted(_ENDS))
_FINAL = frozenset({"completed", "incomplete", "failed"})


class ResponsesTap(AnswerTap):
    """Usage, status, model and the end of one Responses answer, and what is needed to end a
    broken stream properly: the upstream's ``response``, ``created_at`` and ``next_sequence``."""

    # One ``function_call_arguments.done`` event per call in a stream (its item appears three
    # times there: added, done, completed); one ``function_call`` output item in a whole answer.
    STREAM_TOOL_CALL = b'"type":"response.function_call_arguments.done"'
    WHOLE_TOOL_CALL = b'"type":"function_call"'

    def __init__(self) -> None:
        super().__init__()
        self._response: dict[str, Any] | None = None
        self._next_sequence = 0

    @property
    def response(self) -> dict[str, Any] | None:
        """The upstream's response object, from its first event that carries one with an id."""
        self._catch_up()
        return self._response

    @response.setter
    def response(self, value: dict[str, Any] | None) -> None:
        self._response = value

    @property
    def next_sequence(self) -> int:
        """The last ``sequence_number`` seen + 1 (0 before any)."""
        self._catch_up()
        return self._next_sequence

    @next_sequence.setter
    def next_sequence(self, value: int) -> None:
        self._next_sequence = value

    @property
    def created_at(self) -> int:
        """The upstream response's ``created_at`` (now, when it has none)."""
        value = (self.response or {}).get("created_at")
        return value if isinstance(value, int) else int(time.time())

    def opened_with_error(self) -> bool:
        """The first event was ``error``, or a ``response.failed`` numbered 0: nothing came
        before it (a failed response carries a model, so the model tells nothing here)."""
        return self._tap_failed and (self._tap_model is None or self._next_sequence <= 1)

    def _read(self, chunk: bytes) -> None:
        at = chunk.rfind(_SEQUENCE)
        if at >= 0:
            self._sequence(chunk, at + len(_SEQUENCE))
        # ``find`` rather than ``in``: see modelgate.protocols.tap.
        if chunk.find(_RESPONSE) >= 0 or chunk.find(_ERROR) >= 0:
            for event in json_events(chunk, (_RESPONSE, _ERROR), self._wanted):
                self._event(event)

    def whole(self, body: bytes) -> bool:
        response = load(body)
        if not isinstance(response, dict):
            return False
        status = response.get("status")
        if not isinstance(status, str):
            if isinstance(response.get("error"), dict):
                self._failed(response)
            return True
        if isinstance(response.get("id"), str):
            self.response = response
        self._final(response, status)
        return True

    # ----------------------------------------------------------------------- internals

    def _sequence(self, chunk: bytes, i: int) -> None:
        n = len(chunk)
        while i < n and chunk[i] in b" \t:":
            i += 1
        j = i
        while j < n and chunk[j] in _DIGITS:
            j += 1
        if j > i:
            self.next_sequence = int(chunk[i:j]) + 1

    def _wanted(self, frame: bytes) -> bool:
        if _ERROR_TYPE[0] in frame or _ERROR_TYPE[1] in frame:
            return True
        if _RESPONSE not in frame:
            return False
        # The first response, and the final events; not the in-between ones (in_progress…).
        return self.response is None or any(end in frame for end in _END_TYPES)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "error":
            self._failed(event)
            return
        response = event.get("response")
        if not isinstance(response, dict):
            return
        if self.response is None and isinstance(response.get("id"), str):
            self.response = response
            if isinstance(response.get("model"), str):
                self.model = response["model"]
        if kind in _ENDS:
            status = response.get("status")
            self._final(response, status if isinstance(status, str) else str(kind).removeprefix("response."))

    def _final(self, response: dict[str, Any], status: str) -> None:
        self.stop_reason = status
        if isinstance(response.get("model"), str):
            self.model = response["model"]
        if isinstance(response.get("usage"), dict):
            self.usage = decode_usage(response["usage"])
        self.ended = status in _FINAL
        if status == "failed" and not self.failed:
            self._failed({"response": response})

    def _failed(self, data: dict[str, Any]) -> None:
        self.failed = True
        self.error = error_from_object(data)
