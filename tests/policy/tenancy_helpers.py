"""A gateway in process with tenancy configured, and virtual keys made for it."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from modelgate.app import Gateway
from modelgate.config import parse_config
from modelgate.policy.keys import digest, hint, new_secret
from modelgate.store import Budget
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, gateway_config
from tests.pipeline.helpers import asgi_client

MODEL = "claude-sonnet-4-6"


def tenancy_config(fake: FakeUpstream, **changes: Any) -> dict[str, Any]:
    """The shared test config in a fresh data directory; ``changes`` replace top-level sections
    (``tenancy``), and ``models``/``providers`` entries are patched by name with ``model_<name>``
    / ``provider_<name>`` dicts."""
    data = gateway_config(fake)
    data["master_key"] = MASTER_KEY
    data["server"] = {**data["server"], "data_dir": tempfile.mkdtemp(prefix="mg-tenancy-")}
    for name, patch in list(changes.items()):
        if name.startswith("model_"):
            target = name.removeprefix("model_").replace("_", "-")
            data["models"] = [{**m, **patch} if m["name"] == target else m for m in data["models"]]
            del changes[name]
        elif name.startswith("provider_"):
            target = name.removeprefix("provider_")
            data["providers"] = [{**p, **patch} if p["name"] == target else p for p in data["providers"]]
            del changes[name]
    data.update(changes)
    return data


@asynccontextmanager
async def tenant_gateway(fake: FakeUpstream, backend: dict[str, Any], **changes: Any) -> AsyncIterator[Gateway]:
    """A gateway on ``backend`` (the ``server`` settings of its store and counters)."""
    data = tenancy_config(fake, **changes)
    data["server"] = {**data["server"], **backend}
    gw = Gateway(parse_config(data, "test", env={}))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.close()


async def make_key(
    gw: Gateway, name: str, *, budgets: Sequence[Budget] = (), team_id: str | None = None, **attrs: Any
) -> str:
    """A new virtual key in the gateway's store and cache; returns its secret."""
    secret = new_secret()
    record = await gw.tenancy.tenants.create_key(
        name, key_hash=digest(secret), hint=hint(secret), budgets=budgets, team_id=team_id, **attrs
    )
    gw.tenancy.cache.put_key(record)
    return secret


def client(gw: Gateway) -> httpx.AsyncClient:
    return asgi_client(gw)


def anthropic_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


def messages(max_tokens: int = 64, model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Hello"}], **extra}
