"""``/v1/responses/compact`` on the translated path: the summary request and the compaction answer."""

from __future__ import annotations

import pytest
from openai.types.responses import CompactedResponse

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.openai_responses import compaction_request, compaction_response
from modelgate.protocols.openai_responses.common import open_summary
from modelgate.protocols.openai_responses.compact import COMPACT_PROMPT

ITEMS = [
    {"role": "developer", "content": "Use tabs."},
    {"role": "user", "content": "fix the bug"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "secret thoughts"}]},
    {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"cmd":"ls"}'},
    {"type": "function_call_output", "call_id": "c1", "output": "main.py"},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Fixed."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
]


def test_the_summary_request_is_a_transcript() -> None:
    req = compaction_request({"model": "m", "input": ITEMS, "instructions": "You are Codex."})
    assert [b.text for b in req.system or ()] == ["You are Codex.", "Use tabs."]
    assert req.tools is None and req.thinking is None and req.max_tokens == 8192
    [message] = req.messages
    [prompt] = message.content
    assert isinstance(prompt, ir.TextBlock) and message.role == "user"
    assert prompt.text == (
        "<conversation>\n"
        "user:\nfix the bug\n\n"
        'assistant:\n[tool call c1: shell {"cmd":"ls"}]\n\n'
        "user:\n[tool result c1]\nmain.py\n\n"
        "assistant:\nFixed.\n\n"
        "user:\nthanks\n"
        f"</conversation>\n\n{COMPACT_PROMPT}"
    )
    assert "secret thoughts" not in prompt.text


def test_the_answer_keeps_the_user_messages_then_one_compaction_item() -> None:
    out = compaction_response({"model": "m", "input": ITEMS}, "All done.", ir.Usage(10, 5, 2), "resp_ab", 1700000000)
    # The SDK's models type every output item as an *output* item, which user messages are not:
    # check the envelope and the compaction item strictly, the user messages below.
    CompactedResponse.model_validate({**out, "output": out["output"][-1:]})
    assert out["object"] == "response.compaction" and out["id"] == "resp_ab" and out["created_at"] == 1700000000
    assert out["output"][:2] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]
    item = out["output"][2]
    assert (
        item["type"] == "compaction"
        and item["id"] == "cmp_ab02"
        and open_summary(item["encrypted_content"]) == "All done."
    )
    assert out["usage"]["input_tokens"] == 12 and out["usage"]["output_tokens"] == 5


def test_string_input_and_refusals() -> None:
    out = compaction_response({"model": "m", "input": "hi"}, "s", ir.Usage(), "resp_1", 1)
    assert out["output"][0] == {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    with pytest.raises(InvalidRequest) as info:
        compaction_request({"model": "m", "input": "x", "previous_response_id": "resp_0"})
    assert info.value.param == "previous_response_id"
    with pytest.raises(InvalidRequest) as missing:
        compaction_request({"model": "m"})
    assert missing.value.param == "input"
