"""The portal's fixtures: an in-process gateway for page tests, and for the browser tests Debian's
Chromium driven by Playwright, against a real gateway process.

The browser tests never skip: on a machine without Chromium the session fixture installs
Debian's package (``apt-get install chromium``, as root, as CI runs) and, if the driver library
is missing, Playwright for Python from PyPI. Playwright's own browser download is never used.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from modelgate.store import Database, LedgerRow, LedgerStore, RequestRecord, RequestStore, default_url
from modelgate.testing.gateway_runner import GatewayProcess, run_gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, gateway_config

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from modelgate.app import Gateway

CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a headless Chromium on a machine with no network but the loopback (as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
T = TypeVar("T")


def artifacts_dir() -> Path:
    """Where screenshots go: ``$MODELGATE_ARTIFACTS``, else ``tests/artifacts`` (ignored by git)."""
    path = Path(os.environ.get("MODELGATE_ARTIFACTS") or Path(__file__).parents[1] / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


# in process


@pytest.fixture
async def portal_gw(fake: FakeUpstream) -> AsyncIterator[Gateway]:
    from tests.pipeline.helpers import running_gateway

    async with running_gateway(fake) as gateway:
        yield gateway


@pytest.fixture
async def web(portal_gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the in-process gateway: keeps cookies, follows no redirects."""
    from tests.pipeline.helpers import asgi_client

    async with asgi_client(portal_gw) as client:
        yield client


async def log_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await client.get("/portal/login")
    return await client.post("/portal/login", data={"csrf": csrf_of(page.text), "key": key})


@pytest.fixture
async def admin_web(web: httpx.AsyncClient) -> httpx.AsyncClient:
    """``web`` logged in with the master key."""
    response = await log_in(web, MASTER_KEY)
    assert response.status_code == 303, response.text
    return web


# the real browser


def _ensure_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    assert CHROMIUM.exists(), "apt-get installed chromium, but /usr/bin/chromium is not there"
    return CHROMIUM


def _ensure_playwright() -> None:
    if importlib.util.find_spec("playwright") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "playwright>=1.50,<2"], check=True)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium and Playwright for Python, installed once per run where missing."""
    executable = _ensure_chromium()
    _ensure_playwright()
    return executable


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    """Debian's Chromium, headless, installed first if missing; never Playwright's own download.

    Per module, not per session: Playwright's sync API keeps an event loop running in this
    thread while it is open, and the async tests of the modules after it need the thread's own.
    """
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass(frozen=True)
class PortalServer:
    process: GatewayProcess
    data_dir: Path

    @property
    def base_url(self) -> str:
        return self.process.base_url


@pytest.fixture(scope="module")
def portal_gateway(upstream: FakeUpstream) -> Iterator[PortalServer]:
    """A gateway process of its own (a fresh store in ``data_dir``), its ledger flushed every 0.2 s."""
    config: dict[str, Any] = gateway_config(upstream)
    config["tenancy"] = {"ledger_flush_seconds": 0.2}
    # A model served by two deployments and two attempts, so a 529 fails over (the trace shows it).
    config["router"] = {"attempts": 2, "backoff": 0.05, "jitter": 0}
    config["providers"].append({**config["providers"][0], "name": "anth-eu"})
    config["models"].append(
        {
            "name": "sonnet-ha",
            "deployments": [
                {"provider": "anth", "upstream_model": "claude-sonnet-4-6", "priority": 0},
                {"provider": "anth-eu", "upstream_model": "claude-sonnet-4-6-eu", "priority": 1},
            ],
        }
    )
    with run_gateway(config, master_key=MASTER_KEY) as gateway:
        yield PortalServer(gateway, Path(config["server"]["data_dir"]))


def backfill(server: PortalServer, keys: dict[str, list[dict[str, Any]]], hours: int = 24) -> None:
    """A day of earlier traffic for keys (name: budgets) created through the admin API, written into the
    gateway's own store, so the charts and top lists have a history to show (deterministic)."""
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        ids = [
            admin.post("/admin/keys", json={"name": name, "budgets": budgets}).raise_for_status().json()["id"]
            for name, budgets in keys.items()
        ]
    write_rows(server, history(ids, hours))


def history(key_ids: list[str], hours: int = 24, endpoint_id: str | None = None) -> list[LedgerRow]:
    """Deterministic ledger rows for ``key_ids`` over the last ``hours`` (before this hour),
    through ``endpoint_id`` if given: two models, a few errors, latencies with a tail."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    models = [("claude-sonnet-4-6", "anth", 3e-6, 15e-6), ("gpt-4o", "oai", 2.5e-6, 10e-6)]
    tag = endpoint_id or "backfill"
    rows = []
    for hour in range(1, hours + 1):
        for k, key_id in enumerate(key_ids):
            for n in range(2 + (hour * (k + 3)) % 7):
                model, provider, per_in, per_out = models[(hour + n + k) % 2]
                tokens_in, tokens_out = 800 + 150 * ((hour + n) % 9), 120 + 40 * ((hour * n + k) % 11)
                failed = (hour + n + k) % 23 == 0
                rows.append(
                    LedgerRow(
                        request_id=f"req_{tag}_{hour}_{k}_{n}",
                        at=now - timedelta(hours=hour, minutes=-(7 * n + 11 * k) % 60),
                        key_id=key_id,
                        team_id=None,
                        door="anthropic" if provider == "anth" else "openai_chat",
                        endpoint="/v1/messages",
                        model=model,
                        served_model=model,
                        provider=provider,
                        input_tokens=0 if failed else tokens_in,
                        output_tokens=0 if failed else tokens_out,
                        cost_usd=0.0 if failed else tokens_in * per_in + tokens_out * per_out,
                        status=529 if failed else 200,
                        latency_ms=300 + 90 * ((hour * 5 + n * 3 + k) % 17) + (2500 if n % 9 == 8 else 0),
                        endpoint_id=endpoint_id,
                    )
                )
    return rows


def in_store(server: PortalServer, work: Callable[[Database], Awaitable[T]]) -> T:
    """``work`` on the gateway process's own store, from a thread of its own (Playwright's sync
    API runs an event loop in this one)."""

    async def run() -> T:
        async with Database(default_url(server.data_dir)) as db:
            return await work(db)

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(lambda: asyncio.run(run())).result()


def write_rows(server: PortalServer, rows: list[LedgerRow]) -> None:
    async def write(db: Database) -> None:
        await LedgerStore(db).insert_many(rows)

    in_store(server, write)


#: Agent sessions for the request log's backfill: (session id, key index, user agent, door, model, provider, turns).
SESSIONS = (
    ("5d0c6a2e-claude-refactor", 0, "claude-cli/2.1.30 (external, cli)", "anthropic", "claude-sonnet-4-6", "anth", 9),
    ("0199f3c1-codex-tests", 1, "codex_cli_rs/0.50.0 (Debian 13; x86_64)", "openai_responses", "gpt-5-codex", "oai", 6),
    ("gemini-cli-7f21", 1, "GeminiCLI/0.9.0 (linux; x64)", "gemini", "gemini-2.5-flash", "gem", 4),
)


def backfill_log(server: PortalServer, key_ids: list[str], endpoint_ids: list[str]) -> None:
    """Earlier agent sessions in the request log (streams with their time to first token, tool
    calls, one rate-limited turn) and their ledger rows, the second and third sessions through
    the two endpoints, written into the gateway's store: deterministic."""
    now = datetime.now(UTC)
    records = []
    for s, (session_id, k, agent, door, model, provider, count) in enumerate(SESSIONS):
        start = now - timedelta(hours=5 - 2 * s, minutes=17 * s)
        for n in range(count):
            limited = provider == "oai" and n == 3
            attempts = [
                {
                    "provider": provider,
                    "model": model,
                    "key_id": f"{provider}#{n % 2}",
                    "passthrough": True,
                    "status": 429 if limited else 200,
                    "latency_ms": 900 + 350 * ((n * 7 + s) % 5),
                    "error_type": "rate_limit_error" if limited else None,
                    "error_message": "rate limited: retry after 20 s" if limited else None,
                    "upstream_request_id": None,
                }
            ]
            tokens_in = 0 if limited else 4_000 + 2_500 * n
            records.append(
                RequestRecord(
                    request_id=f"req_session_{s}_{n}",
                    at=start + timedelta(seconds=40 * n + 7 * (n % 3)),
                    key_id=key_ids[k],
                    team_id=None,
                    endpoint_id=endpoint_ids[s - 1] if s else None,
                    door=door,
                    endpoint="messages" if door == "anthropic" else "responses" if door != "gemini" else "generate",
                    session_id=session_id,
                    model=model,
                    served_model=model,
                    provider=provider,
                    stream=True,
                    status=429 if limited else 200,
                    error_type="rate_limit_error" if limited else None,
                    error_message="rate limited: retry after 20 s" if limited else None,
                    stop_reason=None if limited else ("tool_use" if n < count - 1 else "end_turn"),
                    latency_ms=attempts[0]["latency_ms"],
                    ttft_ms=None if limited else 280 + 60 * ((n * 5 + s) % 7),
                    input_tokens=tokens_in,
                    output_tokens=0 if limited else 150 + 40 * n,
                    cache_read_tokens=0 if limited else 3_000 * n,
                    cost_usd=0.0 if limited else tokens_in * 3e-6 + (150 + 40 * n) * 15e-6,
                    tool_calls=0 if limited or n == count - 1 else 1 + n % 3,
                    user_agent=agent,
                    client_ip="10.20.0.7",
                    attempts=attempts,
                )
            )

    rows = [
        LedgerRow(
            request_id=r.request_id,
            at=r.at,
            key_id=r.key_id,
            team_id=None,
            door=r.door,
            endpoint=r.endpoint,
            model=r.model or "",
            served_model=r.served_model,
            provider=r.provider,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cache_read_tokens=r.cache_read_tokens,
            cost_usd=r.cost_usd,
            status=r.status,
            latency_ms=r.latency_ms,
            endpoint_id=r.endpoint_id,
        )
        for r in records
    ]

    async def write(db: Database) -> None:
        await RequestStore(db).insert_many(records)
        await LedgerStore(db).insert_many(rows)

    in_store(server, write)
