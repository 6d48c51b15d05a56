"""The protocol matrix, (c) a tool round trip in every cell.

The fake is scripted to call ``get_weather`` with given arguments; the client must receive
the call in its own wire shape with exactly those arguments, send the result back in its
own shape, and get the fake's ``Tool result received: <result>`` answer. The recording
shows that the upstream got the result in *its* own shape, tied to the call it answers.
"""

from __future__ import annotations

import json

import pytest

from modelgate.protocols.gemini.fields import get
from modelgate.protocols.gemini.signatures import SKIP_VALUES
from modelgate.testing.reply import TOOL_RESULT_PREFIX, sign
from tests.matrix.conftest import cells
from tests.matrix.doors import TOOL_NAME, TOOL_SCHEMA
from tests.matrix.upstreams import (
    GEMINI,
    PASSTHROUGH,
    UPSTREAMS,
    b64decode_any,
    call_id,
    tool_calls_sent_back,
    tool_results,
)

ARGS = {"city": "Paris", "days": 3}
RESULT = "sunny, 21 C"
PROMPT = "What will the weather be in Paris?"
#: The thought signature the fake puts on its first function call (``fake_gemini``).
ISSUED = sign("gemini-call:" + TOOL_NAME)


def _declared_tools(protocol: str, body: dict) -> list[tuple[str, dict]]:
    """(name, JSON schema) of the tools the upstream was offered, in its own shape."""
    if protocol == "anthropic":
        return [(t["name"], t["input_schema"]) for t in body["tools"]]
    if protocol == "openai_chat":
        return [(t["function"]["name"], t["function"]["parameters"]) for t in body["tools"]]
    if protocol == "openai_responses":
        return [(t["name"], t["parameters"]) for t in body["tools"]]
    decls = [d for t in get(body, "tools") for d in get(t, "functionDeclarations")]
    return [(get(d, "name"), get(d, "parametersJsonSchema") or get(d, "parameters")) for d in decls]


@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_tool_round_trip(door, fake, door_name: str, kind: str) -> None:
    up = UPSTREAMS[kind]
    proto = up.protocol(door_name)
    fake.script(tool_calls=[{"name": TOOL_NAME, "input": ARGS}])
    trip = door.tool_trip(up.model, PROMPT, RESULT)

    # the client got the call in its own shape, with the exact arguments
    assert [(c.name, c.args) for c in trip.calls] == [(TOOL_NAME, ARGS)]
    if (door_name, kind) == ("gemini", GEMINI):
        assert trip.calls[0].id is None  # Gemini 2.5 calls carry no id, and the passthrough adds none
    else:
        assert trip.calls[0].id

    records = fake.requests()
    path = up.path(door_name, stream=False)
    assert [r["path"] for r in records] == [path, path]
    first, second = records[0]["body"], records[1]["body"]
    assert _declared_tools(proto, first) == [(TOOL_NAME, TOOL_SCHEMA)]

    # the upstream got the result in its own shape, tied to the call it answers
    results = tool_results(proto, second)
    assert len(results) == 1
    result_id, result_name, content = results[0]
    sent_by_client = door.result_as_sent(RESULT)
    upstream_ids = [call_id(proto, c) for c in tool_calls_sent_back(proto, second)]
    assert result_id == upstream_ids[0]  # Gemini: both None, the gateway's gmcall_ ids stay home
    if (door_name, kind) in PASSTHROUGH:
        assert result_id == trip.calls[0].id
    if proto == "gemini":
        assert result_name == TOOL_NAME
        # a string result is wrapped as Google advises; a Gemini client's object goes as it is
        assert content == ({"output": RESULT} if isinstance(sent_by_client, str) else sent_by_client)
        expected_echo = RESULT  # the fake reads {"output": text} back as text
    else:
        if isinstance(sent_by_client, str):
            assert content == RESULT
            expected_echo = RESULT
        else:  # a Gemini client's response object travels as its JSON text
            assert json.loads(content) == sent_by_client
            expected_echo = content
    assert trip.final.text == TOOL_RESULT_PREFIX + expected_echo

    # the call went back upstream with its arguments (and, to Gemini, a thought signature)
    back = tool_calls_sent_back(proto, second)
    assert len(back) == 1
    if proto == "gemini":
        fc = get(back[0], "functionCall")
        assert (get(fc, "name"), get(fc, "args")) == (TOOL_NAME, ARGS)
        signature = get(back[0], "thoughtSignature")
        if door_name in ("gemini", "openai_chat"):
            # the signature the fake issued comes back: untouched bytes (passthrough), or via
            # the tool call's ``extra_content.google.thought_signature`` (Chat Completions)
            assert signature is not None and b64decode_any(signature) == b64decode_any(ISSUED)
        else:
            # Anthropic and Responses tool calls have no slot for it: the documented skip value
            assert signature in SKIP_VALUES
    elif proto == "anthropic":
        assert (back[0]["name"], back[0]["input"]) == (TOOL_NAME, ARGS)
    elif proto == "openai_chat":
        assert back[0]["function"]["name"] == TOOL_NAME and json.loads(back[0]["function"]["arguments"]) == ARGS
    else:
        assert back[0]["name"] == TOOL_NAME and json.loads(back[0]["arguments"]) == ARGS


#: The stop reason of an answer that calls a tool, in each client's vocabulary.
TOOL_STOP = {"anthropic": "tool_use", "openai_chat": "tool_calls", "openai_responses": "completed", "gemini": "STOP"}


@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_streamed_tool_call(door, fake, door_name: str, kind: str) -> None:
    """Two parallel calls streamed: the SDK's stream helper rebuilds each with its exact arguments."""
    up = UPSTREAMS[kind]
    second = {"city": "Tokyo", "days": 10}
    fake.script(tool_calls=[{"name": TOOL_NAME, "input": ARGS}, {"name": TOOL_NAME, "input": second}])
    calls, stop = door.stream_tool_call(up.model, PROMPT)
    assert [(c.name, c.args) for c in calls] == [(TOOL_NAME, ARGS), (TOOL_NAME, second)]
    if (door_name, kind) != ("gemini", GEMINI):
        assert calls[0].id and calls[1].id and calls[0].id != calls[1].id
    assert stop == TOOL_STOP[door_name]
    assert fake.last_request()["path"] == up.path(door_name, stream=True)
