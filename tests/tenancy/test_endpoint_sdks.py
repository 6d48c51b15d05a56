"""Per-application endpoints through a real gateway process, with the official SDKs.

The session's gateway (``tests/conftest.py``) and its admin API: an endpoint and a key are
made there by the master key (the admin write refreshes the endpoint cache at once), then
each SDK is given an endpoint's base URL exactly as the admin API shows it, unchanged:
``anthropic`` (messages, a stream, count_tokens, models.list), ``openai`` (chat, responses,
responses.compact, models.list) and ``google-genai`` (generate_content, a stream,
count_tokens, models.list). An unknown endpoint, a key it does not accept and a model it does
not allow are refused as each SDK's own exception, in its door's envelope; the ledger rows
carry the endpoint's id.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from modelgate.testing.gateway_runner import GatewayProcess
from tests.conftest import MASTER_KEY

CLAUDE = "claude-sonnet-4-6"
GEMINI = "gemini-2.5-flash"
USER: list[Any] = [{"role": "user", "content": "hi"}]
FAKE_TEXT = "Hello from the fake upstream. You said: hi"
ALLOWED = [CLAUDE, "gpt-4o", "gpt-5-mini", GEMINI]


@dataclass
class App:
    id: str
    name: str
    urls: dict[str, str]
    #: A key the endpoint accepts, and one it does not.
    key: str
    stranger: str


@pytest.fixture(scope="module")
def app(gateway: GatewayProcess) -> Iterator[App]:
    tag = secrets.token_hex(3)
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx.Client(base_url=gateway.base_url, headers=admin, timeout=10) as http:
        key = http.post("/admin/keys", json={"name": f"ep-sdk-{tag}"}).json()
        stranger = http.post("/admin/keys", json={"name": f"ep-stranger-{tag}"}).json()
        body = {"name": f"sdk-app-{tag}", "keys": [key["id"]], "models": ALLOWED}
        r = http.post("/admin/endpoints", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        yield App(made["id"], made["name"], made["urls"], key["key"], stranger["key"])
        http.delete(f"/admin/endpoints/{made['id']}")


def claude(url: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=30)


def gpt(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)


def google(url: str, key: str) -> genai.Client:
    retry = types.HttpRetryOptions(attempts=1)
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url, timeout=30_000, retry_options=retry))


def test_the_urls_are_the_gateways(app: App, gateway: GatewayProcess) -> None:
    assert app.urls == {p: f"{gateway.base_url}/v1/{app.id}/{p}" for p in ("anthropic", "openai", "gemini")}


async def test_anthropic_sdk(app: App) -> None:
    async with claude(app.urls["anthropic"], app.key) as c:
        m = await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
        assert (m.content[0].type, m.stop_reason) == ("text", "end_turn")
        assert m.content[0].text == FAKE_TEXT  # type: ignore[union-attr]
        async with c.messages.stream(model=CLAUDE, max_tokens=64, messages=USER) as stream:
            assert "".join([t async for t in stream.text_stream]) == FAKE_TEXT
        count = await c.messages.count_tokens(model=CLAUDE, messages=USER)
        assert count.input_tokens > 0
        assert [model.id async for model in c.models.list()] == ALLOWED


async def test_openai_sdk(app: App) -> None:
    async with gpt(app.urls["openai"], app.key) as o:
        for model in (CLAUDE, "gpt-4o"):
            chat = await o.chat.completions.create(model=model, messages=USER)
            assert chat.choices[0].message.content == FAKE_TEXT
        resp = await o.responses.create(model="gpt-5-mini", input="hi")
        assert resp.status == "completed" and resp.output_text
        items: Any = [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}]
        compacted = await o.responses.compact(model="gpt-4o", input=items)
        assert compacted.object == "response.compaction" and compacted.output[-1].type == "compaction"
        assert [model.id async for model in o.models.list()] == ALLOWED
    async with gpt(app.urls["openai"] + "/v1", app.key) as o:  # a base URL written with /v1 works too
        chat = await o.chat.completions.create(model="gpt-4o", messages=USER)
        assert chat.choices[0].message.content == FAKE_TEXT


async def test_google_genai_sdk(app: App) -> None:
    client = google(app.urls["gemini"], app.key)
    g = await client.aio.models.generate_content(model=GEMINI, contents="hi")
    assert g.text
    pieces = [c.text async for c in await client.aio.models.generate_content_stream(model=GEMINI, contents="hi")]
    assert "".join(p or "" for p in pieces) == g.text
    count = await client.aio.models.count_tokens(model=GEMINI, contents="hi")
    assert count.total_tokens and count.total_tokens > 0
    assert [m.name async for m in await client.aio.models.list()] == [f"models/{m}" for m in ALLOWED]


async def test_refusals_as_each_sdks_exception(app: App, gateway: GatewayProcess) -> None:
    unknown = {p: url.replace(app.id, "ep_nothere00000") for p, url in app.urls.items()}
    missing = "no endpoint 'ep_nothere00000': check the base URL"
    not_listed = f"API key 'ep-stranger-{app.name.removeprefix('sdk-app-')}' may not use endpoint '{app.name}'"
    not_allowed = f"endpoint '{app.name}' may not use model 'claude-haiku-4-5'"
    for url, key, status, type_, code, message in (
        (unknown["anthropic"], app.key, 404, "not_found_error", None, missing),
        (app.urls["anthropic"], app.stranger, 403, "permission_error", "endpoint_key_not_allowed", not_listed),
        (app.urls["anthropic"], app.key, 403, "permission_error", "model_not_allowed", not_allowed),
    ):
        async with claude(url, key) as c:
            with pytest.raises(anthropic.APIStatusError) as info:
                await c.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=USER)
        e = info.value
        assert e.status_code == status and isinstance(e.body, dict)
        error = {"type": type_, "message": message, **({"code": code} if code else {})}
        assert e.body == {"type": "error", "error": error, "request_id": e.request_id}
    not_allowed = f"endpoint '{app.name}' may not use model 'gpt-5-codex'"
    for url, key, status, type_, code, message in (
        (unknown["openai"], app.key, 404, "invalid_request_error", "endpoint_not_found", missing),
        (app.urls["openai"], app.stranger, 403, "permission_error", "endpoint_key_not_allowed", not_listed),
        (app.urls["openai"], app.key, 403, "permission_error", "model_not_allowed", not_allowed),
    ):
        async with gpt(url, key) as o:
            with pytest.raises(openai.APIStatusError) as oinfo:
                await o.chat.completions.create(model="gpt-5-codex", messages=USER)
            oe = oinfo.value
            assert (oe.status_code, oe.body) == (
                status,
                {"message": message, "type": type_, "param": None, "code": code},
            )
            with pytest.raises(openai.APIStatusError) as oinfo:
                await o.responses.create(model="gpt-5-codex", input="hi")
            assert (oinfo.value.status_code, oinfo.value.code) == (status, code)
    not_allowed = f"endpoint '{app.name}' may not use model 'gemini-2.5-pro'"
    for url, key, status, name, reason, message in (
        (unknown["gemini"], app.key, 404, "NOT_FOUND", None, missing),
        (app.urls["gemini"], app.stranger, 403, "PERMISSION_DENIED", "endpoint_key_not_allowed", not_listed),
        (app.urls["gemini"], app.key, 403, "PERMISSION_DENIED", "model_not_allowed", not_allowed),
    ):
        with pytest.raises(genai_errors.ClientError) as ginfo:
            await google(url, key).aio.models.generate_content(model="gemini-2.5-pro", contents="hi")
        ge = ginfo.value
        google_error: dict[str, Any] = {"code": status, "message": message, "status": name}
        if reason:
            info_type = "type.googleapis.com/google.rpc.ErrorInfo"
            google_error["details"] = [{"@type": info_type, "reason": reason, "domain": "modelgate"}]
        assert (ge.code, ge.details) == (status, {"error": google_error})


async def test_the_ledger_carries_the_endpoint(app: App, gateway: GatewayProcess) -> None:
    async with claude(app.urls["anthropic"], app.key) as c:
        await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=admin, timeout=10) as http:
        for _ in range(50):  # the ledger is written in batches, every second
            report = (await http.get("/admin/usage", params={"group_by": "endpoint_id"})).json()
            mine = [line for line in report["data"] if line["group"] == app.id]
            if mine:
                break
            await asyncio.sleep(0.1)
    assert [(line["group"], line["name"]) for line in mine] == [(app.id, app.name)]
    assert mine[0]["requests"] >= 1 and mine[0]["input_tokens"] > 0
