"""Virtual keys through a real gateway process, with the official SDKs.

One ``modelgate serve`` process for the module, on a SQLite store in its data directory
(migrated and given a key before it starts), in front of the shared fake upstream. Keys are
written into that store by the test, as an operator's tools write them, and reach the
gateway through its key cache (refreshed every ``REFRESH`` seconds): nothing reaches into
the process. With ``anthropic``, ``openai`` and ``google-genai`` (no retries):

* a virtual key gets exactly what the master key gets, on every route and streamed or not,
  and never travels upstream;
* every refusal surfaces as the SDK's own exception class, with the status, the error
  type and the gateway's ``code`` (``error.code``, or Google's ``ErrorInfo`` reason), and
  the ``retry-after`` and rate-limit headers on the SDK's raw response;
* ``GET /v1/usage`` rises with the requests made, and agrees with the ledger.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from modelgate.store import Budget, default_url, upgrade
from modelgate.testing.gateway_runner import GatewayProcess, run_gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.tenancy.helpers import Keys, process_config, wait_for_status

CLAUDE = "claude-sonnet-4-6"
GEMINI = "gemini-2.5-flash"
USER: list[Any] = [{"role": "user", "content": "hi"}]
FAKE_TEXT = "Hello from the fake upstream. You said: hi"


@dataclass
class Setup:
    gateway: GatewayProcess
    keys: Keys
    #: A key written into the store before the gateway started.
    early: str


@pytest.fixture(scope="module")
async def setup(upstream: FakeUpstream) -> AsyncIterator[Setup]:
    with tempfile.TemporaryDirectory(prefix="mg-tenancy-sdks-") as data_dir:
        url = default_url(data_dir)
        await upgrade(url)
        keys = Keys(url)
        early = await keys.create("early")
        env = {"MODELGATE_DATABASE_URL": "", "MODELGATE_REDIS_URL": ""}  # this store, counters in process
        try:
            with run_gateway(process_config(upstream, data_dir=data_dir), master_key=MASTER_KEY, env=env) as gw:
                yield Setup(gw, keys, early)
        finally:
            await keys.close()


async def new_key(setup: Setup, name: str, **attrs: Any) -> str:
    """A key written into the store, once the gateway accepts it."""
    secret = await setup.keys.create(name, **attrs)
    await wait_for_status([setup.gateway.base_url], secret, 200)
    return secret


# --------------------------------------------------------------------------- the SDKs


def claude(gw: GatewayProcess, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def gpt(gw: GatewayProcess, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0, timeout=30)


def google(gw: GatewayProcess, key: str) -> genai.Client:
    retry = types.HttpRetryOptions(attempts=1)
    options = types.HttpOptions(base_url=gw.base_url, api_version="v1beta", timeout=30_000, retry_options=retry)
    return genai.Client(api_key=key, http_options=options)


async def every_call(gw: GatewayProcess, key: str) -> dict[str, Any]:
    """One call of each kind with ``key``, reduced to what must not depend on the key."""
    out: dict[str, Any] = {}
    async with claude(gw, key) as c:
        m = await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
        out["messages"] = (m.model, m.stop_reason, [b.model_dump() for b in m.content], m.usage.model_dump())
        async with c.messages.stream(model=CLAUDE, max_tokens=64, messages=USER) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        out["messages_stream"] = (text, final.stop_reason, final.usage.model_dump())
    async with gpt(gw, key) as o:
        for model in (CLAUDE, "gpt-4o"):  # translated to Anthropic, passed through to OpenAI
            chat = await o.chat.completions.create(model=model, messages=USER)
            choice = chat.choices[0]
            out[f"chat {model}"] = (chat.model, choice.finish_reason, choice.message.content, chat.usage)
            chunks = await o.chat.completions.create(
                model=model, messages=USER, stream=True, stream_options={"include_usage": True}
            )
            parts = [(ch.choices[0].delta.content if ch.choices else None, ch.usage) async for ch in chunks]
            out[f"chat stream {model}"] = ("".join(p or "" for p, _ in parts), [u for _, u in parts if u])
        resp = await o.responses.create(model="gpt-5-mini", input="hi")
        out["responses"] = (resp.model, resp.status, resp.output_text, resp.usage)
        events = await o.responses.create(model="gpt-5-mini", input="hi", stream=True)
        kinds = [e.type async for e in events]
        out["responses_stream"] = kinds
    client = google(gw, key)
    g = await client.aio.models.generate_content(model=GEMINI, contents="hi")
    out["generateContent"] = (g.text, g.candidates[0].finish_reason if g.candidates else None, g.usage_metadata)
    pieces = [c.text async for c in await client.aio.models.generate_content_stream(model=GEMINI, contents="hi")]
    out["streamGenerateContent"] = "".join(p or "" for p in pieces)
    return out


async def raised(kind: type[BaseException], call: Awaitable[Any]) -> Any:
    """The exception of class ``kind`` that awaiting ``call`` raises."""
    with pytest.raises(kind) as info:
        await call
    return info.value


async def drain(stream: Awaitable[AsyncIterator[Any]]) -> list[Any]:
    """Every item of an SDK's stream (google-genai raises a refusal on the first read)."""
    return [item async for item in await stream]


def anthropic_refusal(e: anthropic.APIStatusError, status: int, type_: str, code: str | None) -> dict[str, Any]:
    """Anthropic's envelope, as the SDK parsed it; the error object."""
    assert e.status_code == status, e.body
    assert isinstance(e.body, dict) and e.body["type"] == "error", e.body
    assert e.body["error"]["type"] == type_ and e.body["error"].get("code") == code, e.body
    assert e.request_id is not None and e.request_id.startswith("req_")
    assert e.request_id == e.body["request_id"]
    return dict(e.body["error"])


def openai_refusal(e: openai.APIStatusError, status: int, type_: str, code: str) -> None:
    assert (e.status_code, e.type, e.code) == (status, type_, code), e.body
    assert e.request_id and e.request_id.startswith("req_")


def google_refusal(e: genai_errors.APIError, status: int, name: str) -> list[dict[str, Any]]:
    """Google's envelope, as the SDK parsed it; its ``details``."""
    assert isinstance(e, genai_errors.ClientError)
    assert (e.code, e.status) == (status, name), e.details
    assert e.details["error"]["code"] == status
    details: list[dict[str, Any]] = e.details["error"].get("details", [])
    return details


def error_info(details: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["reason"], d["domain"]) for d in details if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]


def retry_info(details: list[dict[str, Any]]) -> list[str]:
    return [d["retryDelay"] for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]


# --------------------------------------------------------------------------- a key that works


async def test_a_key_written_before_the_gateway_started_works_at_once(setup: Setup) -> None:
    async with claude(setup.gateway, setup.early) as c:
        message = await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
    assert message.content[0].type == "text" and message.content[0].text == FAKE_TEXT


async def test_a_virtual_key_gets_exactly_what_the_master_key_gets(setup: Setup, fake: FakeUpstream) -> None:
    gw = setup.gateway
    secret = await new_key(setup, "same-as-master")
    with_master = await every_call(gw, MASTER_KEY)
    upstream_calls = len(fake.requests())
    with_key = await every_call(gw, secret)
    assert with_key == with_master
    assert with_key["messages"][2] == [{"citations": None, "text": FAKE_TEXT, "type": "text"}]
    assert with_key["messages_stream"][0] == FAKE_TEXT
    assert with_key[f"chat {CLAUDE}"][2] == FAKE_TEXT and with_key[f"chat stream {CLAUDE}"][0] == FAKE_TEXT
    assert with_key["responses"][2] and with_key["responses_stream"][-1] == "response.completed"
    assert with_key["generateContent"][0] and with_key["streamGenerateContent"]
    requests = fake.requests()
    assert len(requests) == 2 * upstream_calls  # the same upstream calls, one for one
    for r in requests:
        assert secret not in str(r["headers"]) and secret not in r["raw_body"]  # the virtual key stays here
        assert UPSTREAM_KEY in str(r["headers"])


async def test_usage_rises_with_the_requests_and_agrees_with_the_ledger(setup: Setup) -> None:
    gw = setup.gateway
    budgets = [Budget("5h", usd=5.0), Budget("7d", usd=20.0)]
    secret = await new_key(setup, "metered", budgets=budgets, rpm=100, concurrency=4)
    places = [
        {"headers": {"x-api-key": secret}},
        {"headers": {"authorization": f"Bearer {secret}"}},
        {"headers": {"x-goog-api-key": secret}},
        {"params": {"key": secret}},
    ]
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http:

        async def usage(place: dict[str, Any]) -> dict[str, Any]:
            r = await http.get("/v1/usage", **place)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        before = await usage(places[0])
        assert before == {
            "object": "usage",
            "key": {"name": "metered", "team": None},
            "windows": [
                {"window": "5h", "owner": "key", "used_usd": 0.0, "limit_usd": 5.0, "used_percent": 0.0,
                 "next_free_at": None},
                {"window": "7d", "owner": "key", "used_usd": 0.0, "limit_usd": 20.0, "used_percent": 0.0,
                 "next_free_at": None},
            ],
            "limits": {"rpm": {"limit": 100, "used": 0, "next_free_at": None},
                       "concurrency": {"limit": 4, "active": 0}},
        }  # fmt: skip
        calls = await every_call(gw, secret)
        by_door = await setup.keys.ledger_by_door("metered", requests=len(calls))
        cost = sum(line.cost_usd for line in by_door.values())
        assert {door: line.requests for door, line in by_door.items()} == {
            "anthropic": 2,
            "openai_chat": 4,
            "openai_responses": 2,
            "gemini": 2,
        }
        assert cost > 0 and all(line.input_tokens > 0 and line.output_tokens > 0 for line in by_door.values())
        for place in places:
            after = await usage(place)
            assert after["key"] == {"name": "metered", "team": None}
            assert after["limits"]["rpm"]["used"] == len(calls)
            assert after["limits"]["concurrency"] == {"limit": 4, "active": 0}
            for window in after["windows"]:
                assert window["used_usd"] == pytest.approx(cost, abs=2e-6)
                assert window["used_percent"] == round(100 * window["used_usd"] / window["limit_usd"], 2)
                assert window["next_free_at"].endswith("Z")
                datetime.strptime(window["next_free_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert await http_usage_of(gw, MASTER_KEY) == {
        "object": "usage",
        "key": {"name": "master", "team": None},
        "windows": [],
        "limits": {},
    }


async def http_usage_of(gw: GatewayProcess, key: str) -> Any:
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http:
        return (await http.get("/v1/usage", headers={"x-api-key": key})).json()


# --------------------------------------------------------------------------- refusals, SDK by SDK


async def test_requests_per_minute(setup: Setup) -> None:
    gw = setup.gateway
    secret = await new_key(setup, "one-a-minute", rpm=1)
    async with claude(gw, secret) as c, gpt(gw, secret) as o:
        await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
        for call in (
            c.messages.create(model=CLAUDE, max_tokens=64, messages=USER),
            c.messages.create(model=CLAUDE, max_tokens=64, messages=USER, stream=True),
        ):
            e = await raised(anthropic.RateLimitError, call)
            error = anthropic_refusal(e, 429, "rate_limit_error", "rate_limit_rpm")
            assert error["message"].startswith("modelgate: key 'one-a-minute' reached its requests per minute of 1;")
            headers = e.response.headers
            assert 1 <= int(headers["retry-after"]) <= 60
            assert headers["anthropic-ratelimit-requests-limit"] == "1"
            assert headers["anthropic-ratelimit-requests-remaining"] == "0"
            datetime.strptime(headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ")
        for openai_call in (
            o.chat.completions.create(model=CLAUDE, messages=USER),
            o.chat.completions.create(model="gpt-4o", messages=USER, stream=True),
            o.responses.create(model="gpt-5-mini", input="hi"),
        ):
            e2 = await raised(openai.RateLimitError, openai_call)
            openai_refusal(e2, 429, "rate_limit_error", "rate_limit_rpm")
            headers = e2.response.headers
            assert 1 <= int(headers["retry-after"]) <= 60
            assert headers["x-ratelimit-limit-requests"] == "1"
            assert headers["x-ratelimit-remaining-requests"] == "0"
            assert headers["x-ratelimit-reset-requests"] in {f"{s}s" for s in range(1, 60)} | {"1m0s"}
    client = google(gw, secret)
    for google_call in (
        client.aio.models.generate_content(model=GEMINI, contents="hi"),
        drain(client.aio.models.generate_content_stream(model=GEMINI, contents="hi")),
    ):
        e3 = await raised(genai_errors.ClientError, google_call)
        details = google_refusal(e3, 429, "RESOURCE_EXHAUSTED")
        assert error_info(details) == [("rate_limit_rpm", "modelgate")]
        [delay] = retry_info(details)
        assert delay.endswith("s") and 1 <= int(delay[:-1]) <= 60
        assert e3.response.headers["retry-after"] == delay[:-1]


@pytest.mark.parametrize(
    ("window", "code"), [("total", "budget_exceeded"), ("month", "budget_exceeded"), ("7d", "rate_limit_7d")]
)
async def test_a_spent_budget(setup: Setup, window: str, code: str) -> None:
    gw = setup.gateway
    name = f"spent-{window}"
    secret = await new_key(setup, name, budgets=[Budget(window, usd=0.000001)])  # type: ignore[arg-type]
    async with claude(gw, secret) as c, gpt(gw, secret) as o:
        await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)  # admitted, then charged beyond it
        await setup.keys.ledger_by_door(name, requests=1)  # settled and written
        e = await raised(anthropic.RateLimitError, c.messages.create(model=CLAUDE, max_tokens=64, messages=USER))
        error = anthropic_refusal(e, 429, "rate_limit_error", code)
        label = {"total": "lifetime budget", "month": "month budget", "7d": "7d budget"}[window]
        assert error["message"].startswith(f"modelgate: key {name!r} reached its {label} of $0.00 ($0.00 used);")
        assert not any(h.startswith("anthropic-ratelimit-") for h in e.response.headers)  # spend is no rate
        retry_after = e.response.headers.get("retry-after")
        e2 = await raised(openai.RateLimitError, o.chat.completions.create(model="gpt-4o", messages=USER))
        openai_refusal(e2, 429, "rate_limit_error", code)
        again = e2.response.headers.get("retry-after")  # a moment later: a second less, or the same
        assert (again is None and retry_after is None) or abs(int(again or 0) - int(retry_after or 0)) <= 1
    client = google(gw, secret)
    e3 = await raised(genai_errors.ClientError, client.aio.models.generate_content(model=GEMINI, contents="hi"))
    details = google_refusal(e3, 429, "RESOURCE_EXHAUSTED")
    assert error_info(details) == [(code, "modelgate")]
    if window == "total":
        assert retry_after is None and retry_info(details) == []  # nothing will free it
        assert "nothing will free it" in error["message"]
    else:
        now = datetime.now(UTC)
        if window == "7d":
            expected = 7 * 86400
        else:
            turn = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
            expected = int((turn - now).total_seconds())
        assert retry_after is not None and abs(int(retry_after) - expected) <= 120
        [delay] = retry_info(details)
        assert delay.endswith("s") and abs(int(delay[:-1]) - int(retry_after)) <= 1


async def test_a_model_the_key_may_not_use(setup: Setup) -> None:
    gw = setup.gateway
    secret = await new_key(setup, "haiku-only", models=["claude-haiku-*"])
    async with claude(gw, secret) as c, gpt(gw, secret) as o:
        ok = await c.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=USER)
        assert ok.content[0].type == "text" and ok.content[0].text == FAKE_TEXT
        e = await raised(anthropic.PermissionDeniedError, c.messages.create(model=CLAUDE, max_tokens=64, messages=USER))
        error = anthropic_refusal(e, 403, "permission_error", "model_not_allowed")
        assert error["message"] == f"API key 'haiku-only' may not use model {CLAUDE!r}"
        for call in (
            o.chat.completions.create(model="gpt-4o", messages=USER),
            o.responses.create(model="gpt-5-mini", input="hi"),
        ):
            openai_refusal(
                await raised(openai.PermissionDeniedError, call), 403, "permission_error", "model_not_allowed"
            )
    client = google(gw, secret)
    e2 = await raised(genai_errors.ClientError, client.aio.models.generate_content(model=GEMINI, contents="hi"))
    assert error_info(google_refusal(e2, 403, "PERMISSION_DENIED")) == [("model_not_allowed", "modelgate")]


async def test_max_tokens_above_the_keys_cap(setup: Setup) -> None:
    gw = setup.gateway
    secret = await new_key(setup, "capped", max_tokens=100)
    async with claude(gw, secret) as c, gpt(gw, secret) as o:
        assert (await c.messages.create(model=CLAUDE, max_tokens=100, messages=USER)).content
        e = await raised(anthropic.BadRequestError, c.messages.create(model=CLAUDE, max_tokens=101, messages=USER))
        error = anthropic_refusal(e, 400, "invalid_request_error", "max_tokens_too_large")
        assert error["message"] == "max_tokens: 101 is above 100, the most this API key may ask for"
        for call in (
            o.chat.completions.create(model="gpt-4o", messages=USER, max_completion_tokens=500),
            o.chat.completions.create(model=CLAUDE, messages=USER, max_tokens=500),
            o.responses.create(model="gpt-5-mini", input="hi", max_output_tokens=500),
        ):
            e2 = await raised(openai.BadRequestError, call)
            openai_refusal(e2, 400, "invalid_request_error", "max_tokens_too_large")
    client = google(gw, secret)
    config = types.GenerateContentConfig(max_output_tokens=500)
    e3 = await raised(
        genai_errors.ClientError, client.aio.models.generate_content(model=GEMINI, contents="hi", config=config)
    )
    assert error_info(google_refusal(e3, 400, "INVALID_ARGUMENT")) == [("max_tokens_too_large", "modelgate")]


async def test_a_quarantined_key(setup: Setup) -> None:
    gw = setup.gateway
    secret = await new_key(setup, "suspect")
    await setup.keys.quarantine("suspect", "shared on a forum")
    await wait_for_status([gw.base_url], secret, 403)
    async with claude(gw, secret) as c, gpt(gw, secret) as o:
        e = await raised(anthropic.PermissionDeniedError, c.messages.create(model=CLAUDE, max_tokens=64, messages=USER))
        error = anthropic_refusal(e, 403, "permission_error", "key_quarantined")
        assert error["message"] == (
            "API key 'suspect' is quarantined (shared on a forum): an administrator must release it"
        )
        e2 = await raised(openai.PermissionDeniedError, o.chat.completions.create(model="gpt-4o", messages=USER))
        openai_refusal(e2, 403, "permission_error", "key_quarantined")
    client = google(gw, secret)
    e3 = await raised(genai_errors.ClientError, client.aio.models.generate_content(model=GEMINI, contents="hi"))
    assert error_info(google_refusal(e3, 403, "PERMISSION_DENIED")) == [("key_quarantined", "modelgate")]


async def test_a_revoked_and_an_unknown_key(setup: Setup) -> None:
    gw = setup.gateway
    secret = await new_key(setup, "leaving")
    async with claude(gw, secret) as c:
        assert (await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)).content
    await setup.keys.revoke("leaving")
    await wait_for_status([gw.base_url], secret, 401)
    unknown = "sk-mg-" + "A" * 43
    for key, wording in ((secret, "this API key has been revoked"), (unknown, "invalid x-api-key")):
        async with claude(gw, key) as c, gpt(gw, key) as o:
            e = await raised(
                anthropic.AuthenticationError, c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
            )
            assert anthropic_refusal(e, 401, "authentication_error", None)["message"] == wording
            for call in (
                o.chat.completions.create(model="gpt-4o", messages=USER),
                o.responses.create(model="gpt-5-mini", input="hi"),
            ):
                e2 = await raised(openai.AuthenticationError, call)
                assert (e2.status_code, e2.type, e2.code) == (401, "invalid_request_error", "invalid_api_key")
                masked = key[:3] + "*" * (len(key) - 7) + key[-4:]
                assert isinstance(e2.body, dict) and e2.body["message"] == f"Incorrect API key provided: {masked}."
        client = google(gw, key)
        e3 = await raised(genai_errors.ClientError, client.aio.models.generate_content(model=GEMINI, contents="hi"))
        details = google_refusal(e3, 400, "INVALID_ARGUMENT")
        assert e3.message == "API key not valid. Please pass a valid API key."
        assert error_info(details) == [("API_KEY_INVALID", "googleapis.com")]


@pytest.mark.parametrize("window", ["total", "7d"])
async def test_a_refusal_that_frees_late_or_never_is_not_retried_by_the_sdks(setup: Setup, window: str) -> None:
    """``x-should-retry: false`` when nothing frees within a minute: each SDK gives up at once
    (with its default retries) instead of retrying for nothing."""
    gw = setup.gateway
    name = f"spent-late-{window}"
    secret = await new_key(setup, name, budgets=[Budget(window, usd=0.000001)])  # type: ignore[arg-type]
    async with claude(gw, secret) as c:
        await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
    await setup.keys.ledger_by_door(name, requests=1)
    sent: list[str] = []

    async def count(request: Any) -> None:  # the SDKs' own httpx's request
        sent.append(request.url.path)

    async with (
        anthropic.DefaultAsyncHttpxClient(event_hooks={"request": [count]}) as h1,
        anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=secret, http_client=h1) as c,
        openai.DefaultAsyncHttpxClient(event_hooks={"request": [count]}) as h2,
        openai.AsyncOpenAI(base_url=gw.base_url + "/v1", api_key=secret, http_client=h2) as o,
    ):
        e = await raised(anthropic.RateLimitError, c.messages.create(model=CLAUDE, max_tokens=64, messages=USER))
        e2 = await raised(openai.RateLimitError, o.chat.completions.create(model="gpt-4o", messages=USER))
    assert e.response.headers["x-should-retry"] == "false" and e2.response.headers["x-should-retry"] == "false"
    assert sent == ["/v1/messages", "/v1/chat/completions"]  # one attempt each


async def test_a_refusal_that_frees_within_a_minute_leaves_retrying_to_the_client(setup: Setup) -> None:
    gw = setup.gateway
    secret = await new_key(setup, "retry-later", rpm=1)
    async with claude(gw, secret) as c:
        await c.messages.create(model=CLAUDE, max_tokens=64, messages=USER)
        e = await raised(anthropic.RateLimitError, c.messages.create(model=CLAUDE, max_tokens=64, messages=USER))
    assert "x-should-retry" not in e.response.headers and 1 <= int(e.response.headers["retry-after"]) <= 60
