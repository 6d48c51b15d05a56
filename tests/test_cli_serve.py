"""``modelgate serve`` with no config file: the embedded defaults, as the README's first command runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelgate.testing.gateway_runner import free_port, run_gateway
from modelgate.testing.runner import stop_process, wait_until_listening
from tests.conftest import UPSTREAM_KEY

MASTER = "mg-defaults-master"


@contextmanager
def serve_without_config(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    child_env = {**clean, "MODELGATE_MASTER_KEY": MASTER, "MODELGATE_DATA_DIR": str(tmp_path / "data"), **env}
    cmd = [sys.executable, "-m", "modelgate", "serve", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until_listening("127.0.0.1", port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, 10)


def test_no_keys_still_starts_and_says_no_provider_serves_the_model(tmp_path: Path) -> None:
    with serve_without_config(tmp_path, {}) as base:
        assert httpx.get(base + "/healthz").json()["status"] == "ok"
        client = anthropic.Anthropic(base_url=base, api_key=MASTER, max_retries=0)
        with pytest.raises(anthropic.NotFoundError) as info:
            client.messages.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        assert "no provider serves model 'claude-sonnet-4-6'" in info.value.body["error"]["message"]


def test_the_start_says_where_the_portal_is_and_it_is_there(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MODELGATE_MASTER_KEY": MASTER, "MODELGATE_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "modelgate", "serve", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_listening("127.0.0.1", port, timeout=20)
        login = httpx.get(f"http://127.0.0.1:{port}/portal/login")
        assert login.status_code == 200 and 'name="csrf"' in login.text
    finally:
        stop_process(proc, 10)
    output = proc.stdout.read() if proc.stdout is not None else ""
    assert f"modelgate: the web portal is at http://127.0.0.1:{port}/portal\n" in output


def test_keys_and_base_urls_from_the_environment(tmp_path: Path, upstream) -> None:
    env = {"ANTHROPIC_API_KEY": UPSTREAM_KEY, "ANTHROPIC_BASE_URL": upstream.anthropic_base_url}
    with serve_without_config(tmp_path, env) as base:
        client = anthropic.Anthropic(base_url=base, api_key=MASTER, max_retries=0)
        message = client.messages.create(
            model="claude-haiku-4-5-20251001", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert "You said: hi" in message.content[0].text
        assert next(m.id for m in client.models.list()) == "claude-opus-4-5"


def test_several_workers_serve_the_same_config(upstream) -> None:
    config = {
        "server": {"redis_url": "redis://127.0.0.1:6379/0"},  # limits shared by the workers
        "providers": [{"name": "a", "type": "anthropic", "base_url": upstream.base_url, "api_keys": [UPSTREAM_KEY]}],
        "models": [{"name": "claude-*", "provider": "a"}],
    }
    with run_gateway(config, master_key=MASTER, workers=2) as gateway:
        client = anthropic.Anthropic(base_url=gateway.base_url, api_key=MASTER, max_retries=0)
        for _ in range(10):
            message = client.messages.create(
                model="claude-x", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
            )
            assert message.stop_reason == "end_turn"
        # whichever worker answers the scrape, it adds up both workers' counts
        text = httpx.get(f"{gateway.base_url}/metrics", timeout=10).text
        requests = [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "modelgate_requests_total" and s.labels["model"] == "claude-*"
        ]
        assert sum(requests) == 10


def test_several_workers_without_shared_counters_are_refused(tmp_path) -> None:
    """Counters kept in each process would let a key spend its limits once per worker."""
    config = tmp_path / "modelgate.yaml"
    config.write_text(f"server: {{data_dir: {tmp_path / 'data'}}}\n")
    env = {k: v for k, v in os.environ.items() if k != "MODELGATE_REDIS_URL"}
    cmd = [sys.executable, "-m", "modelgate", "serve", "--config", str(config), "--workers", "2"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--workers 2 needs shared counters" in done.stderr and "--redis-url" in done.stderr
