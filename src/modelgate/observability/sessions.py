"""What a request says about its client, for the request log: user agent, address, agent session.

Agent CLIs name the session a request belongs to, each in its own way:

- Claude Code: the ``X-Claude-Code-Session-Id`` header (2.1 on), and in the body
  ``metadata.user_id``: ``user_<hash>_account_<uuid>_session_<uuid>`` up to 2.0, a JSON
  string ``{"device_id":…,"account_uuid":…,"session_id":…}`` from 2.1
  (tests/fixtures/claude_code/*);
- Codex CLI: a ``session-id`` header (0.169; ``session_id`` is read too);
- Gemini CLI on the API-key path sends no session or prompt id on the wire (its prompt id
  stays in its own telemetry; ``x-gemini-api-privileged-user-id`` names the installation,
  not a session), so its requests have none unless the generic header is set (its
  ``GEMINI_CLI_CUSTOM_HEADERS`` adds it);
- any client: ``X-Modelgate-Session-Id``, which wins over the others.

A session id is the client's value: it is cut to :data:`SESSION_ID_MAX` characters, and the
user agent to :data:`USER_AGENT_MAX`. Everything is read in one pass over the raw headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from modelgate.store.records import storable

SESSION_ID_MAX: Final = 128
USER_AGENT_MAX: Final = 512

# Header slots, by priority for the session id (lower wins).
_UA, _FORWARDED, _OURS, _CLAUDE, _CODEX = range(5)
_HEADERS: Final[Mapping[bytes, int]] = {
    b"user-agent": _UA,
    b"x-forwarded-for": _FORWARDED,
    b"x-modelgate-session-id": _OURS,
    b"x-claude-code-session-id": _CLAUDE,
    b"session_id": _CODEX,
    b"session-id": _CODEX,
}
_CLAUDE_SESSION: Final = "_session_"


class ClientFacts:
    """The headers the request log wants, from one pass over the ASGI scope's raw headers."""

    __slots__ = ("forwarded_for", "session_id", "user_agent")

    def __init__(self, raw_headers: Iterable[tuple[bytes, bytes]]) -> None:
        found: list[bytes | None] = [None] * 5
        get = _HEADERS.get
        for name, value in raw_headers:
            slot = get(name)
            if slot is not None and found[slot] is None:
                found[slot] = value
        ua = found[_UA]
        self.user_agent: str | None = storable(ua.decode("latin-1")[:USER_AGENT_MAX]) if ua is not None else None
        forwarded = found[_FORWARDED]
        self.forwarded_for: str | None = forwarded.decode("latin-1") if forwarded is not None else None
        session = found[_OURS] or found[_CLAUDE] or found[_CODEX]
        self.session_id: str | None = bounded(session.decode("latin-1")) if session else None


def session_from_body(body: Mapping[str, Any]) -> str | None:
    """Claude Code's session id from the body's ``metadata.user_id`` (either of its shapes)."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return None
    user_id = metadata.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{"):
        try:
            found = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return None
        session = found.get("session_id") if isinstance(found, dict) else None
        return bounded(session) if isinstance(session, str) and session else None
    at = user_id.rfind(_CLAUDE_SESSION)
    if at < 0:
        return None
    return bounded(user_id[at + len(_CLAUDE_SESSION) :]) or None


def bounded(session_id: str) -> str:
    """A client's session id as stored: stripped and cut to :data:`SESSION_ID_MAX` characters."""
    return storable(session_id.strip()[:SESSION_ID_MAX])
