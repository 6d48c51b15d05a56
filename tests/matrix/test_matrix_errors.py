"""The protocol matrix, (e) upstream errors in every cell.

The fake answers a 429 with a retry delay, or its kind's "overloaded" status (Anthropic's
529, OpenAI's and Google's 503). The client's own SDK must raise its own error class with
the status its protocol uses for that situation, the upstream's wording and the retry delay
in the client's own place. The mapping, as documented (``docs/architecture.md`` § Errors,
``protocols/openai_chat/errors.py``, ``protocols/gemini/errors.py``):

| client    | rate limited (429)                                        | upstream overloaded                         |
|-----------|-----------------------------------------------------------|---------------------------------------------|
| Anthropic | 429 ``rate_limit_error``, ``retry-after``                 | 529 ``overloaded_error``                    |
| OpenAI    | 429 ``rate_limit_exceeded``, ``retry-after``              | 503 (``server_is_overloaded`` if translated) |
| Gemini    | 429 ``RESOURCE_EXHAUSTED``, ``RetryInfo.retryDelay``      | 503 ``UNAVAILABLE``                         |

A same-protocol upstream's envelope passes through untouched (OpenAI's Chat and Responses
share one envelope, so an OpenAI-compatible server's body reaches a Responses client as is).
"""

from __future__ import annotations

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from modelgate.testing.reply import filler
from tests.matrix.conftest import cells
from tests.matrix.upstreams import ANTHROPIC, GEMINI, KINDS, UPSTREAMS

PROMPT = "Hello there"
RETRY = 7
MESSAGE = "matrix: slow down"
OVERLOAD_STATUS = {kind: 529 if kind == ANTHROPIC else 503 for kind in KINDS}


def _openai_envelope(kind: str) -> bool:
    """Upstreams whose error envelope an OpenAI client gets untouched."""
    return kind not in (ANTHROPIC, GEMINI)


@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_rate_limited(door, fake, door_name: str, kind: str) -> None:
    up = UPSTREAMS[kind]
    fake.script(error={"status": 429, "retry_after": RETRY, "message": MESSAGE})
    seen = door.error(up.model, PROMPT)
    assert len(fake.requests()) == 1  # no retry, no failover
    assert seen.status == 429
    if door_name == "anthropic":
        assert isinstance(seen.exc, anthropic.RateLimitError)
        assert seen.body["error"] == {"type": "rate_limit_error", "message": MESSAGE}
        assert seen.headers["retry-after"] == str(RETRY)
    elif door_name in ("openai_chat", "openai_responses"):
        assert isinstance(seen.exc, openai.RateLimitError)
        error = seen.body["error"]
        assert error["message"] == MESSAGE and error["code"] == "rate_limit_exceeded"
        assert error["type"] == ("requests" if _openai_envelope(kind) else "rate_limit_error")
        assert seen.headers["retry-after"] == str(RETRY)
    else:
        assert isinstance(seen.exc, genai_errors.ClientError)
        assert (seen.exc.status, seen.exc.message) == ("RESOURCE_EXHAUSTED", MESSAGE)
        retry = [d for d in seen.body["error"]["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{RETRY}s"}]


@pytest.mark.parametrize(
    ("door_name", "kind"),
    cells(),
)
def test_overloaded(door, fake, door_name: str, kind: str) -> None:
    up = UPSTREAMS[kind]
    fake.script(error={"status": OVERLOAD_STATUS[kind], "message": MESSAGE})
    seen = door.error(up.model, PROMPT)
    assert len(fake.requests()) == 1
    if door_name == "anthropic":
        assert isinstance(seen.exc, anthropic.OverloadedError)
        assert seen.body["error"] == {"type": "overloaded_error", "message": MESSAGE}
        assert seen.status == 529
    elif door_name in ("openai_chat", "openai_responses"):
        assert isinstance(seen.exc, openai.InternalServerError)
        assert seen.status == 503
        error = seen.body["error"]
        assert error["message"] == MESSAGE
        if _openai_envelope(kind):
            assert (error["type"], error["code"]) == ("server_error", None)  # OpenAI's own, untouched
        else:
            assert (error["type"], error["code"]) == ("service_unavailable_error", "server_is_overloaded")
    else:
        assert isinstance(seen.exc, genai_errors.ServerError)
        assert (seen.status, seen.exc.status, seen.exc.message) == (503, "UNAVAILABLE", MESSAGE)


#: What an error after the stream started becomes in each client's framing, by upstream kind.
#: OpenAI's in-stream error frame carries no status (``{"error": {"type": "server_error"}}``):
#: translated, it can only be a generic server error (``api_error`` / 500 ``INTERNAL``).
MIDSTREAM_ANTHROPIC_TYPE = {ANTHROPIC: "overloaded_error", GEMINI: "overloaded_error"}
MIDSTREAM_GEMINI_STATUS = {ANTHROPIC: (503, "UNAVAILABLE"), GEMINI: (503, "UNAVAILABLE")}


@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_error_after_the_stream_started(door, fake, door_name: str, kind: str) -> None:
    up = UPSTREAMS[kind]
    fake.script(words=30, error={"status": OVERLOAD_STATUS[kind], "after": 4, "message": MESSAGE})
    text, end = door.stream_until_error(up.model, PROMPT)
    assert filler(30).startswith(text) and len(text) < len(filler(30))  # a prefix, never passed off as whole
    if door_name == "anthropic":  # an ``event: error`` after the 200
        assert isinstance(end, anthropic.APIStatusError)
        assert end.body["error"] == {"type": MIDSTREAM_ANTHROPIC_TYPE.get(kind, "api_error"), "message": MESSAGE}
    elif door_name == "openai_chat":  # ``data: {"error": …}`` and no ``[DONE]``
        assert isinstance(end, openai.APIError) and end.message == MESSAGE
        assert end.code == (None if _openai_envelope(kind) else "server_is_overloaded")
    elif door_name == "openai_responses":  # ``response.failed``, never ``response.completed``
        assert end.response.status == "failed"
        assert (end.response.error.code, end.response.error.message) == ("server_error", MESSAGE)
    else:  # an ``{"error": …}`` chunk, raised by the SDK
        assert isinstance(end, genai_errors.ServerError)
        assert (end.code, end.status) == MIDSTREAM_GEMINI_STATUS.get(kind, (500, "INTERNAL"))
        assert end.message == MESSAGE
