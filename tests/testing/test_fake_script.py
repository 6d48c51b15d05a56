"""The scripting model and the reply rules of the fake upstream, without HTTP."""

from __future__ import annotations

import pytest

from modelgate.testing.reply import (
    AUTO_THINKING,
    ECHO_PREFIX,
    TOOL_RESULT_PREFIX,
    Turn,
    build_reply,
    split_json,
    split_pieces,
)
from modelgate.testing.script import Script, ScriptError, ScriptQueue, ToolCall, parse_directives


def turn(text: str = "hi", **kw) -> Turn:
    return Turn(model="m", user_text=text, tool_results=kw.pop("tool_results", None), input_tokens=10, **kw)


def ids():
    n = iter(range(1, 100))
    return lambda: f"toolu_{next(n)}"


def test_directives_parse_and_strip():
    text = 'before [[fake:tool Bash {"command": "echo ]] hi"}]] mid [[fake:thinking a thought]] [[fake:delay 0.25]] end'
    script, stripped = parse_directives(text)
    assert script is not None
    assert script.tool_calls == (ToolCall("Bash", {"command": "echo ]] hi"}),)
    assert script.thinking == "a thought" and script.delay == 0.25
    assert stripped == "before  mid   end"


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("[[fake:text exact  text ]]", lambda s: s.text == "exact  text"),
        ("[[fake:words 5]]", lambda s: s.words == 5),
        ("[[fake:tool Read]]", lambda s: s.tool_calls == (ToolCall("Read", {}),)),
        ("[[fake:error 529]]", lambda s: s.error.status == 529 and s.error.after is None),
        (
            "[[fake:error 429 retry_after=2.5 after=3 type=x too many]]",
            lambda s: (s.error.retry_after, s.error.after, s.error.type, s.error.message) == (2.5, 3, "x", "too many"),
        ),
        ("[[fake:break 3]]", lambda s: s.break_after == 3),
        ("[[fake:end 3]]", lambda s: s.end_after == 3),
        ("[[fake:body <html>down</html>]]", lambda s: s.body == "<html>down</html>"),
        ("[[fake:stall 2]]", lambda s: s.stall == 2.0),
        ("[[fake:max_tokens]]", lambda s: s.stop_reason == "max_tokens"),
        ("[[fake:stop refusal]]", lambda s: s.stop_reason == "refusal"),
        ('[[fake:usage {"cache_read_input_tokens": 5}]]', lambda s: s.usage == {"cache_read_input_tokens": 5}),
        ("[[fake:quirks no_usage, null_choices]]", lambda s: s.quirks == {"no_usage", "null_choices"}),
    ],
)
def test_each_directive(text, check):
    script, _ = parse_directives(text)
    assert check(script)


@pytest.mark.parametrize(
    "text",
    [
        "[[fake:bogus]]",
        "[[fake:text unclosed",
        "[[fake:error]]",
        "[[fake:stop maybe]]",
        '[[fake:tool X {"a": ]]',
        "[[fake:tool X {} junk]]",
    ],
)
def test_bad_directives(text):
    with pytest.raises(ScriptError):
        parse_directives(text)


def test_no_directive_is_cheap_and_none():
    assert parse_directives("plain [[text]]") == (None, "plain [[text]]")


@pytest.mark.parametrize(
    "raw",
    [
        {"nope": 1},
        {"text": 3},
        {"tool_calls": [{"input": {}}]},
        {"error": {"status": 200}},
        {"error": {"status": 500, "colour": "red"}},
        {"usage": {"tokens": 1}},
        {"quirks": ["sloppy"]},
        {"stop_reason": "because"},
        {"times": 0},
        {"match": {"endpoint": "embeddings"}},
        {"delay": True},
    ],
)
def test_script_validation(raw):
    with pytest.raises(ScriptError):
        Script.from_json(raw)


def test_queue_matching_and_times():
    q = ScriptQueue()
    for raw in ({"text": "a", "match": {"protocol": "openai"}}, {"text": "b", "times": 2}, {"text": "c"}):
        q.push(Script.from_json(raw), raw)
    assert q.take("anthropic", "messages", "claude").text == "b"
    assert q.take("anthropic", "count_tokens", "claude") is None  # only answering endpoints by default
    assert q.take("openai", "chat.completions", "gpt").text == "a"
    assert q.take("openai", "chat.completions", "gpt").text == "b"
    assert [p["text"] for p in q.pending()] == ["c"]
    q.push(Script.from_json({"text": "ct", "match": {"endpoint": "count_tokens"}}), {})
    assert q.take("anthropic", "count_tokens", "x").text == "ct"


def test_a_script_can_match_the_api_key_a_request_carries():
    q = ScriptQueue()
    raw = {"error": {"status": 429, "retry_after": 30}, "match": {"key": "sk-a"}, "times": 5}
    q.push(Script.from_json(raw), raw)
    assert q.take("anthropic", "messages", "claude", "sk-b") is None
    assert q.take("anthropic", "messages", "claude") is None  # a request without a key is not "sk-a"'s
    script = q.take("anthropic", "messages", "claude", "sk-a")
    assert script is not None and script.error is not None and script.error.status == 429
    assert q.pending()[0]["remaining"] == 4


@pytest.mark.parametrize(
    "text",
    ["", " ", "a", "  lead and trail  ", "tabs\tand\nnewlines\r\n", "日本語 のテキスト 😀🎉 ok", "one\u00a0nbsp"],
)
def test_split_pieces_is_lossless(text):
    pieces = split_pieces(text)
    assert "".join(pieces) == text
    assert all(pieces)


@pytest.mark.parametrize("text", ["{}", '{"a":1}', '{"command":"echo hi","list":[1,2,3],"u":"ü😀"}'])
def test_split_json_is_lossless(text):
    parts = split_json(text)
    assert "".join(parts) == text and len(parts) >= 2


def test_reply_defaults():
    r = build_reply(turn("  say [[fake:delay 0]] this  "), None, "  say  this  ", ids())
    assert r.text == ECHO_PREFIX + "say  this" and r.stop_reason == "end_turn" and r.calls == []
    long = build_reply(turn("x" * 500), None, "x" * 500, ids())
    assert long.text == ECHO_PREFIX + "x" * 200
    after_tool = build_reply(turn("", tool_results=["out", "put"]), None, "", ids())
    assert after_tool.text == TOOL_RESULT_PREFIX + "out\nput"
    thinking = build_reply(turn(auto_thinking=True), None, "hi", ids())
    assert thinking.thinking == AUTO_THINKING and thinking.signature


def test_reply_usage_formula_and_overrides():
    script = Script.from_json({"text": "a b c", "thinking": "t u", "tool_calls": [{"name": "f", "input": {"k": 1}}]})
    r = build_reply(turn(), script, "hi", ids())
    assert r.usage.output_tokens == 3 + 2 + (len("f") + len('{"k":1}') + 3) // 4
    assert r.usage.reasoning_tokens == 2 and r.usage.input_tokens == 10
    assert r.stop_reason == "tool_use" and r.calls[0].id == "toolu_1"
    over = build_reply(turn(), Script.from_json({"usage": {"input_tokens": 1, "output_tokens": 2}}), "hi", ids())
    assert (over.usage.input_tokens, over.usage.output_tokens) == (1, 2)


def test_reply_limits():
    cut = build_reply(turn(max_tokens=2), Script.from_json({"words": 10}), "", ids())
    assert cut.text == "lorem ipsum" and cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 2
    stop = build_reply(turn(stop_sequences=("dolor", "ipsum")), Script.from_json({"words": 10}), "", ids())
    assert stop.text == "lorem " and stop.stop_sequence == "ipsum" and stop.stop_reason == "stop_sequence"
    forced = build_reply(turn(max_tokens=1), Script.from_json({"words": 10, "stop_reason": "refusal"}), "", ids())
    assert forced.stop_reason == "refusal" and forced.text.count(" ") == 9
