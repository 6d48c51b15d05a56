from __future__ import annotations

import orjson
import pytest

from modelgate.observability.sessions import SESSION_ID_MAX, USER_AGENT_MAX, ClientFacts, session_from_body


def facts(*headers: tuple[str, str]) -> ClientFacts:
    return ClientFacts([(name.encode(), value.encode()) for name, value in headers])


def test_one_pass_finds_the_user_agent_the_forwarded_for_and_the_session() -> None:
    found = facts(
        ("host", "gw"), ("user-agent", "codex_cli_rs/0.50"), ("x-forwarded-for", "1.2.3.4"), ("session_id", "s")
    )
    assert (found.user_agent, found.forwarded_for, found.session_id) == ("codex_cli_rs/0.50", "1.2.3.4", "s")
    assert facts().session_id is None and facts().user_agent is None and facts().forwarded_for is None


@pytest.mark.parametrize(
    ("headers", "session"),
    [
        ((("x-claude-code-session-id", "cc"),), "cc"),
        ((("session-id", "codex"),), "codex"),
        ((("session_id", "codex"), ("x-claude-code-session-id", "cc")), "cc"),
        ((("x-claude-code-session-id", "cc"), ("x-modelgate-session-id", " ours ")), "ours"),
        ((("session_id", ""),), None),
    ],
)
def test_the_session_header_by_priority(headers: tuple[tuple[str, str], ...], session: str | None) -> None:
    assert facts(*headers).session_id == session


def test_client_values_are_bounded() -> None:
    found = facts(("user-agent", "u" * 5000), ("x-modelgate-session-id", "s" * 5000))
    assert (found.user_agent, found.session_id) == ("u" * USER_AGENT_MAX, "s" * SESSION_ID_MAX)


@pytest.mark.parametrize(
    ("metadata", "session"),
    [
        (
            {"user_id": "user_01ab_account__session_8671d9ab-5f5c-4a61-898d-80d5b4dde1b1"},
            "8671d9ab-5f5c-4a61-898d-80d5b4dde1b1",
        ),
        ({"user_id": orjson.dumps({"device_id": "d", "session_id": "e937"}).decode()}, "e937"),
        ({"user_id": '{"device_id": "d"}'}, None),
        ({"user_id": "{not json"}, None),
        ({"user_id": "a plain user"}, None),
        ({"user_id": 7}, None),
        ("not an object", None),
    ],
)
def test_claude_codes_session_in_the_body(metadata: object, session: str | None) -> None:
    assert session_from_body({"metadata": metadata}) == session
    assert session_from_body({}) is None
