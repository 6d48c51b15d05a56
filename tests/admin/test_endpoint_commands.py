"""``modelgate endpoints …`` on a SQLite store, through click's runner."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelgate.cli import main
from modelgate.store import Database, LedgerRow, LedgerStore, default_url


@pytest.fixture
def url(tmp_path: Path) -> str:
    return default_url(tmp_path / "data")


def cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", url], env={"MODELGATE_CONFIG": ""})


def ok(url: str, *args: str) -> Result:
    result = cli(url, *args)
    assert result.exit_code == 0, result.output
    return result


def test_create_shows_each_clients_base_url(url: str) -> None:
    ok(url, "keys", "create", "--name", "bot")
    out = ok(url, "endpoints", "create", "--name", "billing", "--keys", "bot", "--models", "claude-*,gpt-5",
             "--base-url", "https://llm.example.com").output  # fmt: skip
    ep = re.search(r"^id:\s+(ep_[a-z0-9]{12})$", out, re.M)
    assert ep is not None, out
    endpoint_id = ep.group(1)
    for client in ("anthropic", "openai", "gemini"):
        assert f"{client} URL:".ljust(14) + f" https://llm.example.com/v1/{endpoint_id}/{client}" in out, out
    assert re.search(r"^keys:\s+bot$", out, re.M) and re.search(r"^models:\s+claude-\*, gpt-5$", out, re.M)
    assert re.search(r"^status:\s+active$", out, re.M)


def test_default_base_url_is_the_configured_server(url: str) -> None:
    shown = json.loads(ok(url, "endpoints", "create", "--name", "app", "--json").output)
    assert shown["urls"]["openai"] == f"http://127.0.0.1:8080/v1/{shown['id']}/openai"
    assert (shown["keys"], shown["models"], shown["status"]) == ([], [], "active")


def test_list_show_update_delete(url: str) -> None:
    made = json.loads(ok(url, "endpoints", "create", "--name", "app", "--models", "m1", "--json").output)
    listed = json.loads(ok(url, "endpoints", "list", "--json").output)
    assert [e["id"] for e in listed["data"]] == [made["id"]]
    table = ok(url, "endpoints", "list").output
    assert table.splitlines()[0].split() == ["NAME", "ID", "STATUS", "KEYS", "MODELS"]
    assert table.splitlines()[1].split() == ["app", made["id"], "active", "all", "m1"]
    shown = json.loads(ok(url, "endpoints", "show", made["id"], "--json").output)
    assert shown == made
    changed = json.loads(
        ok(url, "endpoints", "update", "app", "--disable", "--clear", "models", "--log-bodies", "--json").output
    )
    assert (changed["status"], changed["models"], changed["log_bodies"]) == ("disabled", [], True)
    enabled = json.loads(ok(url, "endpoints", "update", "app", "--enable", "--json").output)
    assert enabled["status"] == "active" and enabled["disabled_at"] is None
    assert ok(url, "endpoints", "delete", "app").output == f"deleted endpoint app ({made['id']})\n"
    assert ok(url, "endpoints", "list").output == "no endpoints\n"


def test_errors(url: str) -> None:
    ok(url, "endpoints", "create", "--name", "app")
    taken = cli(url, "endpoints", "create", "--name", "app")
    assert (taken.exit_code, taken.output) == (1, "error: an endpoint named 'app' already exists\n")
    missing = cli(url, "endpoints", "create", "--name", "x", "--keys", "nobody")
    assert (missing.exit_code, missing.output) == (1, "error: no key with id or name 'nobody'\n")
    nothing = cli(url, "endpoints", "update", "app")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.output
    gone = cli(url, "endpoints", "show", "nope")
    assert (gone.exit_code, gone.output) == (1, "error: no endpoint with id or name 'nope'\n")


def test_usage_by_endpoint_id_shows_each_endpoint_by_name(url: str) -> None:
    made = json.loads(ok(url, "endpoints", "create", "--name", "app", "--json").output)

    async def bill() -> None:
        async with Database(url) as db:
            rows = [
                LedgerRow(request_id=f"r{i}", at=datetime.now(UTC), key_id=None, team_id=None, door="anthropic",
                          endpoint="messages", model="m", input_tokens=10, cost_usd=cost, endpoint_id=endpoint_id)
                for i, (endpoint_id, cost) in enumerate(((made["id"], 2.0), ("ep_gone", 1.0), (None, 0.5)))
            ]  # fmt: skip
            await LedgerStore(db).insert_many(rows)

    asyncio.run(bill())
    lines = ok(url, "usage", "--by", "endpoint_id").output.splitlines()
    assert lines[0].split()[:2] == ["ENDPOINT_ID", "REQUESTS"]
    assert [line.split()[:2] for line in lines[1:]] == [["app", "1"], ["ep_gone", "(deleted)"], ["(no", "endpoint)"],
                                                        ["TOTAL", "3"]]  # fmt: skip
