"""Clean-up of a translated request for what its upstream rejects, in one place for every provider.

Real clients send shapes one API takes and another refuses: Claude Code marks blocks with
``cache_control`` (only Anthropic knows it), clients send empty text blocks (Anthropic answers
400 "text content blocks must be non-empty"), and a conversation may hold two user turns in a
row (vLLM chat templates and Gemini want turns that alternate). The rules work on the IR, before
the provider's codec encodes it, so the codecs need not each repeat them; the passthrough path
never comes here, so a client's bytes are never touched. Each rule that changed something says
so in the returned notes, which the caller logs with the request id.
"""

from __future__ import annotations

from modelgate import ir
from modelgate.protocols import WireProtocol

#: Upstream protocols whose APIs (or the chat templates behind them) want alternating turns.
_ALTERNATING = frozenset({WireProtocol.OPENAI_CHAT, WireProtocol.GEMINI})
#: The blocks that can carry a ``cache_control`` marker.
_MARKABLE = (ir.TextBlock, ir.ImageBlock, ir.DocumentBlock, ir.ToolUseBlock, ir.ToolResultBlock)


def clean_request(req: ir.Request, protocol: WireProtocol) -> list[str]:
    """Fit ``req`` (in place) to what an upstream of ``protocol`` accepts; one note per change."""
    notes: list[str] = []
    dropped = drop_empty_text(req)
    if dropped:
        notes.append(f"dropped {dropped} empty text block(s)")
    if protocol is not WireProtocol.ANTHROPIC:
        removed = strip_cache_control(req)
        if removed:
            notes.append(f"removed {removed} cache_control marker(s) for a {protocol} upstream")
    if protocol in _ALTERNATING:
        merged = merge_same_role(req)
        if merged:
            notes.append(f"merged {merged} message(s) into the same-role message before them for a {protocol} upstream")
    return notes


def _empty(block: ir.Block) -> bool:
    """A text block that says nothing; one carrying a Gemini signature must go back, so it stays."""
    return isinstance(block, ir.TextBlock) and not block.text.strip() and block.signature is None


def drop_empty_text(req: ir.Request) -> int:
    """Drop empty text blocks from the system, the messages and tool results; a message left
    with no content is dropped too (an empty turn is refused as well). Returns blocks dropped."""
    count = 0
    if req.system:
        kept_system = [b for b in req.system if not _empty(b)]
        count += len(req.system) - len(kept_system)
        req.system = kept_system
    messages: list[ir.Message] = []
    for m in req.messages:
        kept: list[ir.Block] = []
        for b in m.content:
            if _empty(b):
                count += 1
                continue
            if isinstance(b, ir.ToolResultBlock):
                inner = [x for x in b.content if not _empty(x)]
                count += len(b.content) - len(inner)
                b.content = inner
            kept.append(b)
        if kept or not m.content:
            m.content = kept
            messages.append(m)
    req.messages = messages
    return count


def strip_cache_control(req: ir.Request) -> int:
    """Remove every ``cache_control`` marker (system, messages, tool results, tools)."""
    count = 0
    blocks: list[ir.Block] = list(req.system or ())
    for m in req.messages:
        for b in m.content:
            blocks.append(b)
            if isinstance(b, ir.ToolResultBlock):
                blocks.extend(b.content)
    for b in blocks:
        if isinstance(b, _MARKABLE) and b.cache_control is not None:
            b.cache_control = None
            count += 1
    for t in req.tools or ():
        if t.cache_control is not None:
            t.cache_control = None
            count += 1
    return count


def merge_same_role(req: ir.Request) -> int:
    """Merge each message into the one before it when both have the same role (contents kept in
    order, so a user turn of tool results followed by the user's text becomes one turn).
    Returns how many messages were merged away."""
    merged: list[ir.Message] = []
    for m in req.messages:
        if merged and merged[-1].role == m.role:
            merged[-1] = ir.Message(m.role, [*merged[-1].content, *m.content])
        else:
            merged.append(m)
    count = len(req.messages) - len(merged)
    req.messages = merged
    return count
