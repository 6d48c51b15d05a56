"""The protocol matrix, text: every front door × every upstream kind, through the official SDKs.

(a) a non-streamed answer, (b) the same prompt streamed with the SDK's stream helper, and the
path taken: passthrough cells hit the upstream's endpoint of the client's own protocol with
the client's bytes, translated cells the upstream's endpoint of its own protocol.
"""

from __future__ import annotations

import orjson
import pytest
from google.genai import types

from modelgate.testing.reply import ECHO_PREFIX, count_words, filler, split_pieces
from tests.conftest import UPSTREAM_KEY
from tests.matrix.conftest import cells
from tests.matrix.upstreams import (
    ANTHROPIC,
    GEMINI,
    PASSTHROUGH,
    UPSTREAMS,
    input_tokens,
    output_limit,
    system_text,
)
from tests.pipeline.helpers import streamed

PROMPT = "Name three primary colours."
ANSWER = ECHO_PREFIX + PROMPT
SYSTEM = "Answer in one line."


#: A normal end, and an end at the output-token cap, in each client's vocabulary.
END_TURN = {
    "anthropic": "end_turn",
    "openai_chat": "stop",
    "openai_responses": ("completed", None),
    "gemini": types.FinishReason.STOP,
}
MAX_TOKENS_STOP = {
    "anthropic": "max_tokens",
    "openai_chat": "length",
    "openai_responses": ("incomplete", "max_output_tokens"),
    "gemini": types.FinishReason.MAX_TOKENS,
}


def _auth_header(record: dict) -> str:
    h = record["headers"]
    return h.get("x-api-key") or h.get("x-goog-api-key") or h.get("authorization", "").removeprefix("Bearer ")


@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_text(door, fake, door_name: str, kind: str) -> None:
    up = UPSTREAMS[kind]
    answer = door.complete(up.model, PROMPT, system=SYSTEM)
    assert answer.text == ANSWER
    assert answer.stop == END_TURN[door_name]

    records = fake.requests()
    assert [r["path"] for r in records] == [up.path(door_name, stream=False)]
    record = records[0]
    assert _auth_header(record) == UPSTREAM_KEY  # the client's key never goes upstream
    sent = door.last_sent.content
    if (door_name, kind) in PASSTHROUGH:
        if up.upstream_model == up.model and door_name == kind == ANTHROPIC:
            assert record["raw_body"] == streamed(sent)  # the client's bytes, forced to stream
        elif up.upstream_model == up.model:
            assert record["raw_body"] == sent.decode()  # the client's bytes, untouched
        else:  # the model id is rewritten: same JSON, same key order, one value changed
            expected = orjson.loads(sent)
            expected["model"] = up.upstream_model
            if door_name == kind == ANTHROPIC:  # an Anthropic provider forces streaming
                expected["stream"] = True
            assert list(record["body"]) == list(expected) and record["body"] == expected
    else:
        assert record["raw_body"] != sent.decode()
    assert system_text(up.protocol(door_name), record["body"]) == SYSTEM  # in the upstream's own slot

    # usage: the fake's deterministic counts, in the client's own fields
    proto = up.protocol(door_name)
    i = input_tokens(proto, record["body"])
    o = count_words(ANSWER)
    ir = up.ir_usage_for(door_name, i, o, 0, 0)
    assert answer.usage == door.expected_usage(*ir)


@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_stream_equals_non_stream(door, fake, door_name: str, kind: str) -> None:
    up = UPSTREAMS[kind]
    whole = door.complete(up.model, PROMPT)
    streamed = door.stream(up.model, PROMPT)
    assert streamed.text == whole.text == ANSWER
    assert streamed.usage == whole.usage

    records = fake.requests()
    assert len(records) == 2
    record = records[1]
    assert record["path"] == up.path(door_name, stream=True)
    if kind == GEMINI:
        assert record["query"] == "alt=sse"
    if (door_name, kind) in PASSTHROUGH:
        if up.upstream_model == up.model:
            assert record["raw_body"] == door.last_sent.content.decode()
    else:
        body = record["body"]
        if up.protocol(door_name) != "gemini":
            assert body["stream"] is True


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_output_limit(door, fake, door_name: str, kind: str, stream: bool) -> None:
    """The client's output cap reaches the upstream in its own field; the cut answer ends with
    the client's own "length" stop reason."""
    up = UPSTREAMS[kind]
    limit = 16  # the Responses API's minimum
    fake.script(words=40)
    call = door.stream if stream else door.complete
    answer = call(up.model, PROMPT, limit=limit)
    assert answer.text == "".join(split_pieces(filler(40))[:limit]).rstrip()
    assert answer.stop == MAX_TOKENS_STOP[door_name]
    record = fake.last_request()
    assert output_limit(up.protocol(door_name), record["body"]) == limit


@pytest.mark.parametrize("model", ["gpt-5-mini", "gpt-5-codex"], ids=["api-responses", "builtin-codex"])
@pytest.mark.parametrize(
    "door_name",
    [
        "anthropic",
        "openai_chat",
        "openai_responses",
        "gemini",
    ],
)
def test_responses_only_openai_model(door, fake, door_name: str, model: str) -> None:
    """The ``openai`` kind's second endpoint: models only OpenAI's Responses API serves
    (``docs/openai-responses.md`` § The openai provider kind) are reached at ``/v1/responses``
    from every front door: passed through for Responses clients, translated for the others."""
    answer = door.complete(model, PROMPT, system=SYSTEM)
    assert answer.text == ANSWER
    record = fake.last_request()
    assert record["path"] == "/v1/responses"
    assert system_text("openai_responses", record["body"]) == SYSTEM
    if door_name == "openai_responses":
        assert record["raw_body"] == door.last_sent.content.decode()
    else:
        assert record["body"]["store"] is False  # the gateway keeps no state
        i = input_tokens("openai_responses", record["body"])
        assert answer.usage == door.expected_usage(i, count_words(ANSWER), 0, 0)
