"""modelgate.recipes: the package's recipes, and the endpoint forms the portal shows filled in."""

from __future__ import annotations

import pytest

from modelgate.recipes import BASE_URL, ENDPOINT_ID, KEY, for_endpoint, parse, recipe, recipes


def test_the_recipes_are_read_from_the_package_under_their_clients() -> None:
    every = recipes()
    assert len(every) == 26
    assert recipe("claude-code-env").client == "Claude Code"
    assert recipe("curl-gemini@endpoint").client == "curl"
    assert recipe("codex-config").language == "toml" and recipe("codex-config").where == "~/.codex/config.toml"
    assert recipe("codex-config@endpoint").where == "~/.codex/config.toml"
    with pytest.raises(LookupError, match="no recipe 'nope'"):
        recipe("nope")
    with pytest.raises(ValueError, match="written twice"):
        parse("```sh recipe=a\nx\n```\n```sh recipe=a\ny\n```\n")


def test_an_endpoints_snippets_are_its_endpoint_forms_filled_in() -> None:
    clients = for_endpoint("https://gw.example.com/", "ep_k3v9aaaabbbb")
    assert [client for client, _ in clients] == [
        "Claude Code",
        "Codex CLI",
        "Gemini CLI",
        "OpenCode",
        "Anthropic Python SDK",
        "OpenAI Python SDK",
        "google-genai (Python)",
        "curl",
    ]
    names = {client: [s.recipe.name for s in snippets] for client, snippets in clients}
    assert names["Claude Code"] == ["claude-code-env@endpoint", "claude-code-settings@endpoint"]
    assert names["Codex CLI"] == ["codex-config@endpoint", "codex-env"]  # the key's variable: no URL in it
    assert names["Gemini CLI"] == ["gemini-cli-env@endpoint", "gemini-cli-settings"]
    texts = "\n".join(s.text for _, snippets in clients for s in snippets)
    assert BASE_URL not in texts and ENDPOINT_ID not in texts
    assert texts.count(KEY) == 10  # the key stays a placeholder: the gateway has none to show
    claude = dict(clients)["Claude Code"][0].text
    assert claude == (
        "export ANTHROPIC_BASE_URL=https://gw.example.com/v1/ep_k3v9aaaabbbb/anthropic\n"
        f"export ANTHROPIC_API_KEY={KEY}\nclaude\n"
    )
    assert "https://gw.example.com/v1/ep_k3v9aaaabbbb/openai" in dict(clients)["Codex CLI"][0].text
