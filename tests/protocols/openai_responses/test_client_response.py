"""IR answers → the Responses API's ``response`` object (the translated path): golden fixtures
in ``fixtures/client_responses``, which the SDK's own model parses."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response

from modelgate import ir
from modelgate.protocols.openai_responses import encode_response

from .helpers import CREATED, FULL, RESPONSE_ID, USAGE, check

RESPONSES: dict[str, tuple[dict[str, Any], ir.Response]] = {
    "text": (
        {"instructions": "Be brief.", "metadata": {"k": "v"}, "store": False, "temperature": 0.2},
        ir.Response("msg_1", "claude-sonnet-4-6", [ir.TextBlock("Hello"), ir.TextBlock(" world")], "end_turn", USAGE),
    ),
    "thinking_and_tools": (
        FULL,
        ir.Response(
            "msg_2",
            "claude-sonnet-4-6",
            [
                ir.ThinkingBlock("Let me think.", "sig", "anthropic"),
                ir.RedactedThinkingBlock("opaque"),
                ir.TextBlock("Calling tools."),
                ir.ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
                ir.ToolUseBlock("toolu_2", "apply_patch", {"input": "*** Begin Patch"}),
                ir.ToolUseBlock("toolu_3", "crm__find", {"_raw": "{bad json"}),
            ],
            "tool_use",
            USAGE,
        ),
    ),
    "thinking_not_asked_for": (
        {},
        ir.Response(
            "msg_3", "m", [ir.ThinkingBlock("hidden", "sig", "anthropic"), ir.TextBlock("ok")], "end_turn", USAGE
        ),
    ),
    "max_tokens": (
        {"max_output_tokens": 16},
        ir.Response("msg_4", "m", [ir.TextBlock("cut")], "max_tokens", ir.Usage()),
    ),
    "refusal": ({}, ir.Response("msg_5", "m", [ir.TextBlock("No.")], "refusal", ir.Usage())),
}


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_client_response_golden(name: str) -> None:
    fields, resp = RESPONSES[name]
    body = {"model": resp.model, "input": "x", **fields}
    out = encode_response(resp, body, RESPONSE_ID, CREATED)
    Response.model_validate(out)  # the SDK's own model takes it
    check("client_responses", name, out)
