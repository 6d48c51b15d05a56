"""Responses front door → Anthropic and OpenAI-compatible upstreams: translation through the IR."""

from __future__ import annotations

import json

import openai
import pytest

from modelgate.testing.reply import AUTO_THINKING, ECHO_PREFIX, TOOL_RESULT_PREFIX

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    }
]
TEXT_STREAM = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
]


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_text_non_streaming(oai: openai.OpenAI, fake, model: str) -> None:
    resp = oai.responses.create(model=model, input="Hello there", instructions="Be brief.", metadata={"k": "v"})
    assert resp.object == "response" and resp.id.startswith("resp_") and resp.status == "completed"
    assert resp.model == model and resp.output_text == ECHO_PREFIX + "Hello there"
    assert resp.instructions == "Be brief." and resp.metadata == {"k": "v"} and resp.store is True
    [message] = resp.output
    assert message.type == "message" and message.id.startswith("msg_") and message.status == "completed"
    assert message.content[0].annotations == []
    assert resp.usage.output_tokens == len(resp.output_text.split()) and resp.usage.input_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens


def test_what_anthropic_receives(oai: openai.OpenAI, fake) -> None:
    oai.responses.create(
        model="claude-sonnet-4-6",
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        ],
        temperature=0.5,
        user="user-1",
        text={"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}},
    )
    sent = fake.last_request("/v1/messages")["body"]
    assert sent["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric units."}]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert sent["max_tokens"] == 8192 and sent["temperature"] == 0.5
    assert sent["metadata"] == {"user_id": "user-1"}
    assert sent["output_config"]["format"]["schema"] == {"type": "object"}


def test_stream_exact_event_sequence(oai: openai.OpenAI, fake) -> None:
    with oai.responses.create(model="claude-sonnet-4-6", input="Hello there", stream=True) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas > 2
    assert kinds == [
        *TEXT_STREAM[:-1],
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    ids = {e.response.id for e in events if hasattr(e, "response")}
    assert len(ids) == 1 and events[0].response.status == "in_progress" and events[0].response.usage is None
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == ECHO_PREFIX + "Hello there" and events[-4].text == text
    final = events[-1].response
    assert final.status == "completed" and final.output_text == text and final.usage.output_tokens > 0
    assert events[2].item.id == events[-2].item.id == final.output[0].id


def test_stream_helper_matches_non_streaming(oai: openai.OpenAI, fake) -> None:
    with oai.responses.stream(model="qwen-local", input="abc") as stream:
        final = stream.get_final_response()
    whole = oai.responses.create(model="qwen-local", input="abc")
    assert final.output_text == whole.output_text and final.usage.output_tokens == whole.usage.output_tokens


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_function_call_round_trip(oai: openai.OpenAI, fake, model: str) -> None:
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Paris, with a long name to split"}}])
    with oai.responses.stream(model=model, input="weather?", tools=TOOLS) as stream:
        pieces = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        first = stream.get_final_response()
    assert len(pieces) > 1 and first.status == "completed"
    [call] = first.output
    assert call.type == "function_call" and call.id.startswith("fc_") and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris, with a long name to split"} == json.loads("".join(pieces))
    follow = [
        {"role": "user", "content": "weather?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = oai.responses.create(model=model, input=follow, tools=TOOLS)
    assert second.output_text == TOOL_RESULT_PREFIX + "sunny"
    if model.startswith("claude"):
        sent = fake.last_request("/v1/messages")["body"]
        assert sent["messages"][1]["content"][0] == {
            "type": "tool_use",
            "id": call.call_id,
            "name": "get_weather",
            "input": {"city": "Paris, with a long name to split"},
        }
        assert sent["messages"][2]["content"][0]["tool_use_id"] == call.call_id
        assert sent["tools"][0]["input_schema"] == TOOLS[0]["parameters"] and "strict" not in sent["tools"][0]


def test_reasoning_round_trip_keeps_the_signature(oai: openai.OpenAI, fake) -> None:
    fake.configure(verify_signatures=True)
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Oslo"}}])
    first = oai.responses.create(
        model="claude-sonnet-4-6",
        input="weather?",
        tools=TOOLS,
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    assert fake.last_request("/v1/messages")["body"]["thinking"] == {"type": "enabled", "budget_tokens": 8191}
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert reasoning.summary[0].text == AUTO_THINKING and reasoning.encrypted_content.startswith("mg1:")
    assert first.usage.output_tokens_details.reasoning_tokens == 0
    follow = [
        {"role": "user", "content": "weather?"},
        reasoning.model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "snow"},
    ]
    second = oai.responses.create(
        model="claude-sonnet-4-6", input=follow, tools=TOOLS, reasoning={"effort": "high"}
    )  # the fake checks the signature: a 400 here would mean the thinking came back changed
    assert second.output[-1].content[0].text == TOOL_RESULT_PREFIX + "snow"
    assert second.output[0].summary == [] and second.output[0].encrypted_content is None  # not asked for
    thinking = fake.last_request("/v1/messages")["body"]["messages"][1]["content"][0]
    assert thinking["type"] == "thinking" and thinking["thinking"] == AUTO_THINKING


def test_reasoning_summary_stream(oai: openai.OpenAI, fake) -> None:
    fake.script(thinking="deep thought")
    with oai.responses.create(
        model="claude-sonnet-4-6", input="hi", reasoning={"effort": "low", "summary": "auto"}, stream=True
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[2:5] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
    ]
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "deep thought"
    done = kinds.index("response.reasoning_summary_part.done")
    assert kinds[done - 1] == "response.reasoning_summary_text.done" and kinds[done + 1] == "response.output_item.done"
    assert events[done + 2].type == "response.output_item.added" and events[done + 2].output_index == 1
    assert events[-1].response.output[0].summary[0].text == "deep thought"


def test_usage_maps_cache_tokens(oai: openai.OpenAI, fake) -> None:
    fake.script(usage={"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5})
    usage = oai.responses.create(model="claude-sonnet-4-6", input="x").usage
    assert usage.input_tokens == 115 and usage.input_tokens_details.cached_tokens == 100
    assert usage.total_tokens == 115 + usage.output_tokens


def test_max_output_tokens_gives_incomplete(oai: openai.OpenAI, fake) -> None:
    fake.script(stop_reason="max_tokens")
    resp = oai.responses.create(model="claude-sonnet-4-6", input="x", max_output_tokens=16)
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete" and resp.max_output_tokens == 16
    assert fake.last_request("/v1/messages")["body"]["max_tokens"] == 16
    fake.script(stop_reason="max_tokens")
    with oai.responses.create(model="claude-sonnet-4-6", input="x", stream=True) as stream:
        last = list(stream)[-1]
    assert last.type == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"


def test_namespace_and_custom_tools(oai: openai.OpenAI, fake) -> None:
    tools = [
        {
            "type": "namespace",
            "name": "mcp__files__",
            "description": "File tools",
            "tools": [{"type": "function", "name": "read", "parameters": {"type": "object", "properties": {}}}],
        },
        {"type": "custom", "name": "apply_patch", "description": "Apply a patch"},
        {"type": "web_search", "external_web_access": False},
    ]
    fake.script(
        tool_calls=[
            {"name": "mcp__files__read", "input": {"path": "a.txt"}},
            {"name": "apply_patch", "input": {"input": "*** Begin Patch"}},
        ]
    )
    resp = oai.responses.create(model="claude-sonnet-4-6", input="go", tools=tools)
    sent = fake.last_request("/v1/messages")["body"]["tools"]
    assert [t["name"] for t in sent] == ["mcp__files__read", "apply_patch"]  # web_search left out
    assert sent[1]["input_schema"]["required"] == ["input"]
    read, patch = resp.output
    assert (read.type, read.namespace, read.name) == ("function_call", "mcp__files__", "read")
    assert (patch.type, patch.name, patch.input) == ("custom_tool_call", "apply_patch", "*** Begin Patch")
    follow = [
        {"role": "user", "content": "go"},
        read.model_dump(exclude_none=True),
        patch.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": read.call_id, "output": "content"},
        {"type": "custom_tool_call_output", "call_id": patch.call_id, "output": "Done!"},
    ]
    oai.responses.create(model="claude-sonnet-4-6", input=follow, tools=tools)
    calls = fake.last_request("/v1/messages")["body"]["messages"][1]["content"]
    assert [(c["name"], c["input"]) for c in calls] == [
        ("mcp__files__read", {"path": "a.txt"}),
        ("apply_patch", {"input": "*** Begin Patch"}),
    ]


def test_images_and_files(oai: openai.OpenAI, fake) -> None:
    content = [
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        {"type": "input_text", "text": "What is this?"},
    ]
    oai.responses.create(model="claude-sonnet-4-6", input=[{"role": "user", "content": content}])
    sent = fake.last_request("/v1/messages")["body"]["messages"][0]["content"]
    assert sent[0] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert sent[1] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        "title": "a.pdf",
    }


def test_compact_by_the_routed_model_and_back(oai: openai.OpenAI, fake) -> None:
    fake.script(text="The user wants the weather in Oslo; it snows.")
    items = [
        {"role": "user", "content": "weather in Oslo?"},
        {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "snow"},
    ]
    compacted = oai.responses.compact(model="claude-sonnet-4-6", input=items, instructions="You are Codex.")
    assert compacted.object == "response.compaction" and compacted.id.startswith("resp_")
    user, item = compacted.output
    assert user.type == "message" and user.role == "user" and item.type == "compaction"
    sent = fake.last_request("/v1/messages")["body"]
    assert sent["system"] == [{"type": "text", "text": "You are Codex."}]
    prompt = sent["messages"][0]["content"][0]["text"]
    assert "weather in Oslo?" in prompt and "get_weather" in prompt and "snow" in prompt and "tools" not in sent
    later = [
        user.model_dump(exclude_none=True, warnings=False),  # the SDK types user messages as output messages
        item.model_dump(exclude_none=True),
        {"role": "user", "content": "and now?"},
    ]
    oai.responses.create(model="claude-sonnet-4-6", input=later)
    turn = fake.last_request("/v1/messages")["body"]["messages"][0]["content"]
    assert turn[1]["text"].endswith("The user wants the weather in Oslo; it snows.")


def test_model_cap_applies_and_reasoning_maps_for_chat_upstreams(oai: openai.OpenAI, fake) -> None:
    oai.responses.create(model="qwen-local", input="hi", reasoning={"effort": "low"}, max_output_tokens=32000)
    sent = fake.last_request("/v1/chat/completions")["body"]
    assert sent["model"] == "qwen2.5:0.5b" and sent["max_tokens"] == 4096 and sent["reasoning_effort"] == "low"
