"""OpenAI Chat front door → Anthropic upstream: translation through the IR, both ways, seen
through the official ``openai`` SDK on one side and the Anthropic fake's recordings on the other."""

from __future__ import annotations

import httpx
import openai
import orjson

from tests.conftest import MASTER_KEY, UPSTREAM_KEY

MODEL = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "Hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def sent(fake) -> dict:
    """What the Anthropic fake received last."""
    return fake.last_request("/v1/messages")


def test_text_non_streaming(chat: openai.OpenAI, fake) -> None:
    messages = [{"role": "developer", "content": "Be brief."}, *USER]
    completion = chat.chat.completions.create(model=MODEL, messages=messages, temperature=0.5, stop="END")
    assert completion.object == "chat.completion" and completion.model == MODEL
    assert completion.id.startswith("chatcmpl-msg_")
    choice = completion.choices[0]
    assert choice.message.content.endswith("You said: Hello there")
    assert (choice.message.role, choice.message.refusal, choice.finish_reason) == ("assistant", None, "stop")
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    upstream = sent(fake)
    assert upstream["headers"]["x-api-key"] == UPSTREAM_KEY
    assert upstream["body"] == {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}],
        "system": [{"type": "text", "text": "Be brief."}],
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "stream": True,  # the Anthropic provider forces streaming; the client still gets one JSON answer
    }


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens(chat: openai.OpenAI, fake) -> None:
    usage = {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 300, "cache_creation_input_tokens": 50}
    fake.script(text="ok", usage=usage)
    got = chat.chat.completions.create(model=MODEL, messages=USER).usage
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (360, 7, 367)
    assert got.prompt_tokens_details.cached_tokens == 300
    assert got.prompt_tokens_details.cache_write_tokens == 50


def test_streaming_chunks_in_openai_order_with_usage(gateway, fake) -> None:
    fake.script(text="Hello streaming world", usage={"input_tokens": 12, "output_tokens": 3})
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": MODEL, "messages": USER, "stream": True, "stream_options": {"include_usage": True}},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in r.text.split("\n\n") if f and not f.startswith(":")]
    assert frames[-1] == "data: [DONE]"
    chunks = [orjson.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    assert {(c["id"], c["model"], c["object"]) for c in chunks} == {(chunks[0]["id"], MODEL, "chat.completion.chunk")}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2]) == "Hello streaming world"
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 12
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert sent(fake)["body"]["stream"] is True


def test_streaming_without_include_usage_has_no_usage(chat: openai.OpenAI, fake) -> None:
    chunks = list(chat.chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_streamed_parallel_tool_calls_and_round_trip(chat: openai.OpenAI, fake) -> None:
    fake.script(
        tool_calls=[
            {"name": "get_weather", "input": {"city": "Paris, with a long name to split"}},
            {"name": "get_weather", "input": {"city": "Tokyo"}},
        ]
    )
    with chat.chat.completions.stream(model=MODEL, messages=USER, tools=TOOLS, parallel_tool_calls=False) as stream:
        fragments = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        first = stream.get_final_completion()
    assert len(fragments) > 2  # arguments arrive in pieces
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    calls = message.tool_calls
    assert [orjson.loads(c.function.arguments)["city"] for c in calls] == ["Paris, with a long name to split", "Tokyo"]
    assert sent(fake)["body"]["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert sent(fake)["body"]["tools"][0] == {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": TOOLS[0]["function"]["parameters"],
    }
    follow_up = [
        *USER,
        message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": f"sunny in {c.id}"} for c in calls),
        {"role": "user", "content": "Thanks"},
    ]
    second = chat.chat.completions.create(model=MODEL, messages=follow_up, tools=TOOLS)
    assert second.choices[0].message.content and second.choices[0].finish_reason == "stop"
    turns = sent(fake)["body"]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1]["content"]] == ["tool_use", "tool_use"]
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result", "text"]
    assert [b["tool_use_id"] for b in turns[2]["content"][:2]] == [c.id for c in calls]


def test_image_data_url_becomes_a_base64_image(chat: openai.OpenAI, fake) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    chat.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert sent(fake)["body"]["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_response_format_json_schema(chat: openai.OpenAI, fake) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    chat.chat.completions.create(
        model=MODEL,
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "title", "schema": schema, "strict": True}},
    )
    # Anthropic's structured output takes only type and schema.
    assert sent(fake)["body"]["output_config"]["format"] == {"type": "json_schema", "schema": schema}


def test_reasoning_effort_becomes_thinking_and_comes_back(chat: openai.OpenAI, fake) -> None:
    thought = "Let me think about the weather."
    fake.script(thinking=thought, tool_calls=[{"name": "get_weather", "input": {"city": "Oslo"}}])
    completion = chat.chat.completions.create(model=MODEL, messages=USER, tools=TOOLS, reasoning_effort="high")
    body = sent(fake)["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert body["max_tokens"] == 4096 + 16384
    assert "output_config" not in body  # effort rides only with adaptive thinking; the budget carries it here
    message = completion.choices[0].message.model_dump()
    assert message["reasoning_content"] == thought
    assert message["thinking_blocks"][0]["thinking"] == thought
    # The signed thinking goes back with the tool result: the fake checks the signature, like Anthropic.
    follow_up = [
        *USER,
        {k: message[k] for k in ("role", "content", "tool_calls", "thinking_blocks")},
        {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "cold"},
    ]
    chat.chat.completions.create(model=MODEL, messages=follow_up, tools=TOOLS, reasoning_effort="high")
    assistant = sent(fake)["body"]["messages"][1]["content"]
    assert (
        assistant[0]["type"] == "thinking" and assistant[0]["signature"] == message["thinking_blocks"][0]["signature"]
    )


def test_streamed_reasoning_is_reasoning_content(chat: openai.OpenAI, fake) -> None:
    fake.script(thinking="Deep thoughts.", text="Answer.")
    chunks = list(chat.chat.completions.create(model=MODEL, messages=USER, stream=True, reasoning_effort="low"))
    deltas = [c.choices[0].delta.model_dump() for c in chunks]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "Deep thoughts."
    assert "".join(d.get("content") or "" for d in deltas) == "Answer."
    assert sent(fake)["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_max_tokens_and_refusal_finish_reasons(chat: openai.OpenAI, fake) -> None:
    fake.script(stop_reason="max_tokens")
    completion = chat.chat.completions.create(model=MODEL, messages=USER, max_completion_tokens=5, max_tokens=99)
    assert completion.choices[0].finish_reason == "length"
    assert sent(fake)["body"]["max_tokens"] == 5
    fake.script(stop_reason="refusal")
    chunks = list(chat.chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_user_becomes_anthropic_metadata(chat: openai.OpenAI, fake) -> None:
    chat.chat.completions.create(model=MODEL, messages=USER, user="user-42", store=False, service_tier="auto")
    assert sent(fake)["body"]["metadata"] == {"user_id": "user-42"}
    assert "store" not in sent(fake)["body"] and "service_tier" not in sent(fake)["body"]
