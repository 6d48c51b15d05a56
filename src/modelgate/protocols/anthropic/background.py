"""Claude Code's background requests, recognised from the bodies real releases sent.

The rule comes from traffic captured from the npm releases themselves (bodies in
``tests/fixtures/claude_code``), not from guesses:

- **Warm-up**: Claude Code 2.0.19 to 2.1.5 (first and last release seen sending them)
  sends, at start-up, one ``Warmup`` request per built-in sub-agent (Explore, Plan, Bash
  …), each on that agent's model, with its system prompt and tools, streamed: the call's
  ``messages`` is exactly one user message whose content is ``"Warmup"``, as one text
  block (with ``cache_control``) or as a bare string. Nothing else is looked at: model,
  system, tools and ``max_tokens`` vary from release to release and agent to agent.
  2.0.15 and earlier, and 2.1.6 and later, send none.
- **Session title**: the current releases (2.1.x; seen in 2.1.330) name a session with a
  call that has no tools and asks for JSON with ``output_config.format`` of type
  ``json_schema`` whose schema is an object with exactly one property, ``title``. The
  older topic request of 2.1.0 (an assistant prefill ``{``, no schema) is not matched.
- **Never**: the ``/model`` validation probe (``max_tokens: 1``, the text ``Hi``, not
  streamed). Claude Code refuses a model whose probe fails, so a call with
  ``max_tokens: 1`` is never classified, whatever else it holds.

It runs on every Messages call, so it bails out at the first check that fails: a dict
lookup or two for an ordinary call.
"""

from __future__ import annotations

from typing import Any

from modelgate.protocols.codec import Background

__all__ = ["WARMUP_TEXT", "classify_background"]

#: The whole text of a warm-up request's one user message.
WARMUP_TEXT = "Warmup"


def classify_background(body: dict[str, Any]) -> Background | None:
    """``Background.WARMUP``, ``Background.TITLE``, or None for any other Messages call."""
    if body.get("max_tokens") == 1:  # the /model probe, and anything like it: never touched
        return None
    messages = body.get("messages")
    if type(messages) is list and len(messages) == 1 and _is_warmup(messages[0]):
        return Background.WARMUP
    config = body.get("output_config")
    if config is not None and _is_title(body, config):
        return Background.TITLE
    return None


def _is_warmup(message: Any) -> bool:
    if type(message) is not dict or message.get("role") != "user":
        return False
    content = message.get("content")
    if content == WARMUP_TEXT:
        return True
    if type(content) is not list or len(content) != 1:
        return False
    block = content[0]
    return type(block) is dict and block.get("type") == "text" and block.get("text") == WARMUP_TEXT


def _is_title(body: dict[str, Any], config: Any) -> bool:
    if type(config) is not dict or body.get("tools"):
        return False
    fmt = config.get("format")
    if type(fmt) is not dict or fmt.get("type") != "json_schema":
        return False
    schema = fmt.get("schema")
    if type(schema) is not dict or schema.get("type") != "object":
        return False
    properties = schema.get("properties")
    return type(properties) is dict and list(properties) == ["title"]
