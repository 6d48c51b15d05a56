"""The Responses codec tests' golden fixtures (``fixtures/<kind>/<case>.json``, see
:mod:`tests.protocols.golden`), and the answer the client-side tests share: ids, tools, usage."""

from __future__ import annotations

from pathlib import Path

from modelgate import ir
from tests.protocols.golden import Golden, as_json

GOLDEN = Golden(Path(__file__).parent / "fixtures")
load, check, names = GOLDEN.load, GOLDEN.check, GOLDEN.names

RESPONSE_ID = "resp_0123456789abcdef0123456789abcdef0123456789abcdef"
CREATED = 1_741_476_542
TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    {"type": "custom", "name": "apply_patch"},
    {"type": "namespace", "name": "crm", "description": "CRM", "tools": [{"type": "function", "name": "find"}]},
]
FULL = {"reasoning": {"effort": "high", "summary": "auto"}, "include": ["reasoning.encrypted_content"], "tools": TOOLS}
USAGE = ir.Usage(input_tokens=10, output_tokens=20, cache_read_tokens=100, cache_write_tokens=5, reasoning_tokens=7)

__all__ = ["CREATED", "FULL", "RESPONSE_ID", "TOOLS", "USAGE", "as_json", "check", "load", "names"]
