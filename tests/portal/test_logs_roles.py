"""What each attempt of a request was to the one before it, as a trace labels it."""

from __future__ import annotations

from typing import Any

from modelgate.portal.logs import attempt_role


def tried(provider: str, model: str, key_id: str, route: str | None) -> dict[str, Any]:
    return {"provider": provider, "model": model, "key_id": key_id, "route": route}


def test_next_key_retry_and_fallback_in_the_routers_words() -> None:
    first = tried("anth", "claude-sonnet-4-6", "anth#0", "sonnet-ha")
    assert attempt_role(None, first) == "first try"
    assert attempt_role(first, tried("anth", "claude-sonnet-4-6", "anth#1", "sonnet-ha")) == "next key"
    assert attempt_role(first, tried("anth", "claude-sonnet-4-6", "anth#0", "sonnet-ha")) == "retry"
    # another deployment of the same model is a retry, not a fallback
    assert attempt_role(first, tried("anth-eu", "claude-sonnet-4-6-eu", "anth-eu#0", "sonnet-ha")) == "retry"
    assert attempt_role(first, tried("oai", "gpt-4o", "oai#0", "gpt-4o")) == "fallback"


def test_records_from_before_attempts_named_their_route_compare_deployments() -> None:
    first = tried("anth", "claude-sonnet-4-6", "anth#0", None)
    assert attempt_role(first, tried("anth", "claude-sonnet-4-6", "anth#0", None)) == "retry"
    assert attempt_role(first, tried("anth-eu", "claude-sonnet-4-6-eu", "anth-eu#0", None)) == "fallback"
