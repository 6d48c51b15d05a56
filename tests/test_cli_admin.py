"""``modelgate db|keys|teams|usage`` on a SQLite store: through click's runner, and once as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner, Result

from modelgate.cli import main
from modelgate.policy.keys import digest, is_virtual
from modelgate.store import Budget, Database, KeyRecord, LedgerRow, LedgerStore, TenantStore, UserStore, default_url

T = TypeVar("T")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return default_url(tmp_path / "data")


def cli(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", url], env=env)


def ok(url: str, *args: str) -> Result:
    result = cli(url, *args)
    assert result.exit_code == 0, result.output
    return result


def on_store(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Database(url) as db:
            return await work(db)

    return asyncio.run(run())


def stored_key(url: str, ref: str) -> KeyRecord:
    return on_store(url, lambda db: TenantStore(db).get_key(ref))


def last_line(result: Result) -> str:
    return result.stdout.rstrip("\n").splitlines()[-1]


# keys


def test_create_prints_the_key_alone_last_and_pairs_budgets_with_windows(url: str) -> None:
    ok(url, "teams", "create", "--name", "research")
    result = ok(
        url, "keys", "create", "--name", "alice", "--team", "research",
        "--budget-usd", "5", "--window", "7d", "--budget-credits", "100", "--window=month", "--budget-usd", "20",
        "--rpm", "60", "--tpm", "100000", "--concurrency", "4", "--max-tokens", "8192",
        "--models", "claude-*,gpt-4o", "--models", "gemini-2.5-pro", "--expires", "2027-01-01",
        "--ip-allow", "10.0.0.0/8", "--ip-limit", "3", "--metadata", "owner=alice@example.com",
    )  # fmt: skip
    secret = last_line(result)
    assert is_virtual(secret) and result.stdout == secret + "\n"  # stdout holds the key alone
    assert result.output.rstrip("\n").splitlines()[-1] == secret  # and a terminal shows it last
    assert "shown only this once" in result.stderr
    key = stored_key(url, "alice")
    assert key.key_hash == digest(secret)
    assert key.budgets == (Budget("7d", usd=5.0), Budget("month", credits=100.0), Budget("total", usd=20.0))
    assert (key.rpm, key.tpm, key.concurrency, key.max_tokens) == (60, 100_000, 4, 8192)
    assert key.models == ("claude-*", "gpt-4o", "gemini-2.5-pro")
    assert key.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert (key.ip_allow, key.ip_limit, key.ip_window) == (("10.0.0.0/8",), 3, "24h")
    assert key.metadata == {"owner": "alice@example.com"} and key.team_id is not None


def test_amounts_without_a_window_are_lifetime_budgets(url: str) -> None:
    ok(url, "keys", "create", "--name", "k",
       "--budget-usd", "1", "--budget-usd", "2", "--window", "5h", "--credits", "9", "--window", "7d")  # fmt: skip
    assert stored_key(url, "k").budgets == (Budget("total", usd=1.0), Budget("5h", usd=2.0), Budget("7d", credits=9.0))
    ok(url, "keys", "create", "--name", "j", "--budget-usd", "3", "--credits", "30", "--window", "7d")
    assert stored_key(url, "j").budgets == (Budget("7d", usd=3.0, credits=30.0),)
    result = cli(
        url, "keys", "create", "--name", "i", "--budget-usd", "1", "--window", "7d", "--credits", "2", "--window=7d"
    )
    assert result.exit_code == 2 and "more than one budget over the 7d window" in result.stderr


def test_list_and_show_never_print_the_key(url: str) -> None:
    secret = last_line(ok(url, "keys", "create", "--name", "alice", "--budget-usd", "5", "--window", "7d"))
    hint = secret[:10] + "…"
    commands = [("keys", "list"), ("keys", "show", "alice")]
    for args in (*commands, *((*command, "--json") for command in commands)):
        result = ok(url, *args)
        assert secret not in result.output and digest(secret) not in result.output
        assert hint in result.output and "alice" in result.output
    shown = ok(url, "keys", "show", "alice").stdout
    assert "status:     active" in shown
    assert shown.splitlines()[-1].split()[:6] == ["key", "7d", "$0", "$5", "0.0%", "0"]
    assert json.loads(ok(url, "keys", "show", "alice", "--json").stdout)["hint"] == hint


def test_update_sets_and_clears(url: str) -> None:
    ok(url, "teams", "create", "--name", "t")
    ok(url, "keys", "create", "--name", "k", "--team", "t", "--rpm", "5", "--expires", "2027-01-01T12:00:00+02:00")
    assert stored_key(url, "k").expires_at == datetime(2027, 1, 1, 10, tzinfo=UTC)
    ok(url, "keys", "update", "k", "--name", "k2", "--tpm", "50", "--clear", "team", "--clear", "expires",
       "--budget-usd", "3", "--window", "month")  # fmt: skip
    key = stored_key(url, "k2")
    assert (key.rpm, key.tpm, key.team_id, key.expires_at) == (5, 50, None, None)
    assert key.budgets == (Budget("month", usd=3.0),)
    ok(url, "keys", "update", "k2", "--clear", "rpm", "--clear", "budgets", "--models", "a, b")
    key = stored_key(url, "k2")
    assert (key.rpm, key.budgets, key.models) == (None, (), ("a", "b"))
    for args, message in (
        (("keys", "update", "k2"), "nothing to change"),
        (("keys", "update", "k2", "--rpm", "1", "--clear", "rpm"), "--clear rpm and a new value"),
        (("keys", "update", "k2", "--rpm", "0"), "0 is not in the range x>=1"),
    ):
        result = cli(url, *args)
        assert result.exit_code == 2 and message in result.stderr, result.output


def test_rotate_revoke_release(url: str) -> None:
    old = last_line(ok(url, "keys", "create", "--name", "k", "--rpm", "7"))
    result = ok(url, "keys", "rotate", "k")
    new = last_line(result)
    assert is_virtual(new) and new != old and result.stdout == new + "\n"
    key = stored_key(url, "k")
    assert key.key_hash == digest(new) and key.rpm == 7
    on_store(url, lambda db: TenantStore(db).update_key("k", quarantined_at=datetime.now(UTC), quarantine_reason="x"))
    assert "quarantined" in ok(url, "keys", "show", "k").stdout
    ok(url, "keys", "release", key.id)
    assert stored_key(url, "k").quarantined_at is None
    assert "revoked at" in ok(url, "keys", "revoke", "k").stdout
    assert stored_key(url, "k").revoked_at is not None
    result = cli(url, "keys", "rotate", "k")
    assert result.exit_code == 1 and "revoked" in result.stderr and not result.stdout


def test_errors_and_exit_codes(url: str, tmp_path: Path) -> None:
    ok(url, "keys", "create", "--name", "k")
    for args, code, message in (
        (("keys", "show", "nope"), 1, "error: no key with id or name 'nope'"),
        (("keys", "revoke", "nope"), 1, "'nope'"),
        (("keys", "create", "--name", "k"), 1, "a key named 'k' already exists"),
        (("keys", "create", "--name", "j", "--team", "nope"), 1, "no team"),
        (("keys", "create", "--name", "j", "--window", "7d", "--budget-usd", "1"), 2, "--window 7d must follow"),
        (("keys", "create", "--name", "j", "--window", "1y"), 2, "'1y' is not one of"),
        (("keys", "create", "--name", "j", "--ip-allow", "nope"), 2, "'nope' is not an IP address"),
        (("keys", "create", "--name", "j", "--ip-window", "soon"), 2, "ip_window is a duration"),
        (("keys", "create", "--name", "j", "--expires", "soon"), 2, "'soon' is not an ISO 8601 date"),
        (("keys", "create", "--name", "j", "--metadata", "x"), 2, "'x' is not KEY=VALUE"),
        (("keys", "create", "--name", "j", "--budget-usd", "-1"), 2, "-1.0 is not in the range x>=0"),
        (("keys", "create"), 2, "Missing option '--name'"),
        (("usage", "--by", "colour"), 2, "'colour' is not one of"),
    ):
        result = cli(url, *args)
        assert (result.exit_code, result.stdout) == (code, ""), result.output
        assert message in result.stderr, result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {port: nope}\n")
    result = CliRunner().invoke(main, ["keys", "list", "--config", str(bad)])
    assert result.exit_code == 2 and "invalid configuration" in result.stderr
    result = cli("mysql://localhost/x", "keys", "list")
    assert result.exit_code == 2 and "unsupported database" in result.stderr
    result = cli("postgresql://postgres@127.0.0.1:1/test", "keys", "list")
    assert result.exit_code == 1 and "cannot use the store at postgresql://postgres@127.0.0.1:1/test" in result.stderr


# teams


def test_teams(url: str) -> None:
    out = ok(url, "teams", "create", "--name", "t", "--budget-usd", "50", "--window", "month", "--rpm", "100").stdout
    assert "budgets: $50/month" in out and "rpm 100" in out
    ok(url, "keys", "create", "--name", "k", "--team", "t")
    listed = ok(url, "teams", "list").stdout
    assert listed.splitlines()[0].split() == ["NAME", "ID", "KEYS", "BUDGETS", "LIMITS"] and " 1 " in listed
    ok(url, "teams", "update", "t", "--clear", "budgets", "--concurrency", "3", "--name", "t2")
    shown = json.loads(ok(url, "teams", "show", "t2", "--json").stdout)
    assert (shown["budgets"], shown["concurrency"], shown["rpm"]) == ([], 3, 100)
    assert [t["name"] for t in json.loads(ok(url, "teams", "list", "--json").stdout)["data"]] == ["t2"]
    result = cli(url, "teams", "delete", "t2")
    assert result.exit_code == 1 and "still has 1 key" in result.stderr
    ok(url, "keys", "update", "k", "--clear", "team")
    assert "deleted" in ok(url, "teams", "delete", "t2").stdout
    assert ok(url, "teams", "list").stdout == "no teams\n"


# usage


def test_usage_table_and_json(url: str) -> None:
    ok(url, "teams", "create", "--name", "t", "--budget-usd", "10", "--window", "7d")
    ok(url, "keys", "create", "--name", "alice", "--team", "t")
    ok(url, "keys", "create", "--name", "bob")
    alice, bob = stored_key(url, "alice"), stored_key(url, "bob")
    now = datetime.now(UTC)

    def row(key: KeyRecord | None, days: float, cost: float, model: str = "sonnet") -> LedgerRow:
        return LedgerRow(
            request_id=f"r{days}{cost}", at=now - timedelta(days=days), key_id=key and key.id,
            team_id=key and key.team_id, door="anthropic", endpoint="messages", model=model,
            input_tokens=1000, output_tokens=100, cost_usd=cost,
        )  # fmt: skip

    rows = [row(alice, 1, 2.0), row(alice, 10, 1.0, "opus"), row(bob, 2, 0.5), row(None, 0, 0.25)]
    on_store(url, lambda db: LedgerStore(db).insert_many(rows))
    table = ok(url, "usage").stdout.splitlines()
    assert table[0].split()[:3] == ["KEY", "REQUESTS", "INPUT"]
    assert [line.split()[0] for line in table[1:]] == ["alice", "bob", "(master", "TOTAL"]
    assert table[-1].split() == ["TOTAL", "4", "4000", "400", "0", "0", "3.7500"]
    since = (now - timedelta(days=5)).date().isoformat()
    by_model = json.loads(ok(url, "usage", "--key", "alice", "--since", since, "--by", "model", "--json").stdout)
    assert [(line["group"], line["cost_usd"]) for line in by_model["data"]] == [("sonnet", 2.0)]
    by_team = ok(url, "usage", "--by", "team").stdout.splitlines()
    assert [line.split()[0] for line in by_team[1:]] == ["t", "(no", "TOTAL"]
    assert ok(url, "usage", "--team", "t", "--since", "2100-01-01").stdout.startswith("no usage recorded since")
    windows = ok(url, "keys", "show", "alice").stdout.splitlines()[-1].split()
    assert windows[:7] == ["team", "t", "7d", "$2", "$10", "20.0%", "1"]  # the team's week, alice's only in it
    result = cli(url, "usage", "--key", "nope")
    assert result.exit_code == 1 and "'nope'" in result.stderr


# the store


def test_db_upgrade_and_where_the_store_is(tmp_path: Path) -> None:
    url = default_url(tmp_path / "a")
    assert "upgraded from empty to schema revision" in ok(url, "db", "upgrade").stdout
    assert "already at schema revision" in ok(url, "db", "upgrade").stdout
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  data_dir: {tmp_path / 'from-config'}\n")
    runner = CliRunner()
    no_url: dict[str, str | None] = {"MODELGATE_DATABASE_URL": None}
    result = runner.invoke(main, ["keys", "create", "--name", "c", "--config", str(config)], env=no_url)
    assert result.exit_code == 0
    assert (tmp_path / "from-config" / "modelgate.db").exists()
    env_url = default_url(tmp_path / "from-env")
    result = runner.invoke(main, ["keys", "create", "--name", "e"], env={"MODELGATE_DATABASE_URL": env_url})
    assert result.exit_code == 0 and (tmp_path / "from-env" / "modelgate.db").exists()
    result = runner.invoke(main, ["keys", "list", "--config", str(config)], env={"MODELGATE_DATABASE_URL": env_url})
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["e"]  # the environment over data_dir


def test_a_real_process_prints_the_key_last_and_lists_without_it(tmp_path: Path) -> None:
    env = {**os.environ, "MODELGATE_DATA_DIR": str(tmp_path / "data")}
    env.pop("MODELGATE_DATABASE_URL", None)

    def modelgate(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "modelgate", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)

    created = modelgate("keys", "create", "--name", "proc", "--budget-usd", "5", "--window", "7d", "--rpm", "60")
    secret = created.stdout.splitlines()[-1]
    assert is_virtual(secret) and created.stdout == secret + "\n" and "shown only this once" in created.stderr
    listed = modelgate("keys", "list")
    assert "proc" in listed.stdout and secret[:10] + "…" in listed.stdout
    assert secret not in listed.stdout + listed.stderr
    assert (tmp_path / "data" / "modelgate.db").exists()


def test_keys_send_warmups_upstream_on_request(url: str) -> None:
    ok(url, "keys", "create", "--name", "cc")
    assert stored_key(url, "cc").intercept_warmup is True
    ok(url, "keys", "create", "--name", "cc2", "--no-intercept-warmup")
    assert stored_key(url, "cc2").intercept_warmup is False
    shown = ok(url, "keys", "update", "cc", "--no-intercept-warmup")
    assert "sent upstream" in shown.output
    assert stored_key(url, "cc").intercept_warmup is False
    ok(url, "keys", "update", "cc", "--intercept-warmup")
    assert stored_key(url, "cc").intercept_warmup is True


def test_users_create_list_password_delete(url: str) -> None:
    created = CliRunner().invoke(
        main, ["users", "create", "ops", "--password-stdin", "--database-url", url], input="a long enough secret\n"
    )
    assert created.exit_code == 0, created.output
    assert "user ops (user_" in created.output and "a long enough secret" not in created.output
    listed = json.loads(ok(url, "users", "list", "--json").output)
    assert [u["name"] for u in listed] == ["ops"] and "password" not in json.dumps(listed)
    short = CliRunner().invoke(
        main, ["users", "create", "x", "--password-stdin", "--database-url", url], input="short\n"
    )
    assert short.exit_code == 2 and "12 to 1024" in short.output
    again = CliRunner().invoke(
        main, ["users", "create", "ops", "--password-stdin", "--database-url", url], input="a long enough secret\n"
    )
    assert again.exit_code == 1 and "already exists" in again.output
    changed = CliRunner().invoke(
        main, ["users", "password", "ops", "--password-stdin", "--database-url", url], input="another secret!!\n"
    )
    assert changed.exit_code == 0, changed.output

    async def check(db: Database) -> tuple[bool, bool]:
        users = UserStore(db)
        return (
            await users.authenticate("ops", "a long enough secret") is None,
            await users.authenticate("ops", "another secret!!") is not None,
        )

    assert on_store(url, check) == (True, True)
    assert "user ops deleted" in ok(url, "users", "delete", "ops").output
    assert ok(url, "users", "list").output.strip() == "no users"
    assert cli(url, "users", "delete", "ops").exit_code == 1


def test_keys_keep_their_bodies_on_request(url: str) -> None:
    ok(url, "keys", "create", "--name", "b")
    assert stored_key(url, "b").log_bodies is False
    ok(url, "keys", "create", "--name", "b2", "--log-bodies")
    assert stored_key(url, "b2").log_bodies is True
    shown = ok(url, "keys", "update", "b", "--log-bodies")
    assert "kept in the request log" in shown.output
    assert stored_key(url, "b").log_bodies is True
    ok(url, "keys", "update", "b", "--no-log-bodies")
    assert stored_key(url, "b").log_bodies is False
