from __future__ import annotations

from modelgate import ir
from modelgate.accounting.tokens import IMAGE_TOKENS, estimate_request_tokens


def request(**kw) -> ir.Request:
    return ir.Request(model="m", max_tokens=1, messages=kw.pop("messages", []), **kw)


def test_counts_system_messages_tools_and_nested_tool_results() -> None:
    base = estimate_request_tokens(request(messages=[ir.Message("user", [ir.TextBlock("hello " * 30)])]))
    assert base >= 60  # 180 chars: never below 1 token per 3 chars
    with_system = estimate_request_tokens(
        request(messages=[ir.Message("user", [ir.TextBlock("hello " * 30)])], system=[ir.TextBlock("x" * 300)])
    )
    assert with_system >= base + 100
    nested = ir.ToolResultBlock("t", [ir.TextBlock("y" * 600), ir.ImageBlock("image/png", "AAAA")])
    with_result = estimate_request_tokens(request(messages=[ir.Message("user", [nested])]))
    assert with_result >= 200 + IMAGE_TOKENS
    tool = ir.Tool("bash", "Run a shell command " * 10, {"type": "object", "properties": {"command": {}}})
    with_tool = estimate_request_tokens(request(messages=[ir.Message("user", [ir.TextBlock("hi")])], tools=[tool]))
    assert with_tool > 60


def test_never_zero() -> None:
    assert estimate_request_tokens(request()) == 1
