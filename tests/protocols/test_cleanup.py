"""Unit tests of the IR clean-up applied on the translated path (``protocols.cleanup``)."""

from __future__ import annotations

from modelgate import ir
from modelgate.protocols import WireProtocol
from modelgate.protocols.cleanup import clean_request, drop_empty_text, merge_same_role, strip_cache_control

CC = {"type": "ephemeral"}


def request(*messages: ir.Message, **fields: object) -> ir.Request:
    return ir.Request("m", list(messages), 16, **fields)  # type: ignore[arg-type]


def test_same_role_turns_merge_in_order_with_tool_results() -> None:
    call = ir.ToolUseBlock("t1", "ls")
    result = ir.ToolResultBlock("t1", [ir.TextBlock("a.txt")])
    req = request(
        ir.Message("user", [ir.TextBlock("go")]),
        ir.Message("assistant", [call]),
        ir.Message("user", [result]),
        ir.Message("user", [ir.TextBlock("and then?")]),
        ir.Message("user", [ir.TextBlock("quick")]),
    )
    assert merge_same_role(req) == 2
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert req.messages[2].content == [result, ir.TextBlock("and then?"), ir.TextBlock("quick")]


def test_alternating_turns_are_left_alone() -> None:
    req = request(ir.Message("user", [ir.TextBlock("a")]), ir.Message("assistant", [ir.TextBlock("b")]))
    before = list(req.messages)
    assert merge_same_role(req) == 0
    assert req.messages == before


def test_cache_control_is_removed_everywhere() -> None:
    req = request(
        ir.Message("user", [ir.TextBlock("x", CC), ir.ToolResultBlock("t", [ir.TextBlock("r", CC)], cache_control=CC)]),
        system=[ir.TextBlock("sys", CC)],
        tools=[ir.Tool("ls", cache_control=CC)],
    )
    assert strip_cache_control(req) == 5
    assert strip_cache_control(req) == 0


def test_empty_text_is_dropped_but_a_signed_one_stays() -> None:
    signed = ir.TextBlock("", signature="sig")
    req = request(
        ir.Message("user", [ir.TextBlock(""), ir.TextBlock("hi"), ir.ToolResultBlock("t", [ir.TextBlock(" ")])]),
        ir.Message("assistant", [ir.TextBlock("  \n")]),
        ir.Message("assistant", [signed]),
        system=[ir.TextBlock("")],
    )
    assert drop_empty_text(req) == 4
    assert req.system == []
    assert [m.role for m in req.messages] == ["user", "assistant"]  # the turn left empty is gone
    assert req.messages[0].content[1] == ir.ToolResultBlock("t", [])
    assert req.messages[1].content == [signed]


def test_rules_per_upstream_protocol() -> None:
    def messy() -> ir.Request:
        return request(
            ir.Message("user", [ir.TextBlock("a", CC)]),
            ir.Message("user", [ir.TextBlock("")]),
            ir.Message("user", [ir.TextBlock("b")]),
        )

    anthropic = messy()
    assert clean_request(anthropic, WireProtocol.ANTHROPIC) == ["dropped 1 empty text block(s)"]
    assert anthropic.messages[0].content[0].cache_control == CC  # type: ignore[union-attr]
    assert len(anthropic.messages) == 2  # Anthropic merges consecutive turns itself
    for protocol in (WireProtocol.OPENAI_CHAT, WireProtocol.GEMINI):
        req = messy()
        assert len(clean_request(req, protocol)) == 3
        assert req.messages == [ir.Message("user", [ir.TextBlock("a"), ir.TextBlock("b")])]
    responses = messy()
    assert len(clean_request(responses, WireProtocol.OPENAI_RESPONSES)) == 2
    assert len(responses.messages) == 2


def test_a_clean_request_has_no_notes() -> None:
    req = request(ir.Message("user", [ir.TextBlock("hi")]))
    assert clean_request(req, WireProtocol.OPENAI_CHAT) == []
