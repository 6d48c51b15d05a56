"""The application object in process: routes no door serves (unknown paths, wrong methods) in the
envelope of the protocol the path belongs to, the health and root endpoints, the crash handler,
the lifespan, and the master key."""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

import httpx
import pytest

from modelgate.app import Gateway, create_app, ensure_master_key
from modelgate.config import parse_config
from modelgate.protocols import WireProtocol
from modelgate.testing.runner import FakeUpstream
from tests.pipeline.helpers import ANTHROPIC_HEADERS, OPENAI_HEADERS, asgi_client


def anthropic_envelope(r: httpx.Response, kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": r.headers["request-id"]}


def openai_envelope(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


def gemini_envelope(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


# --------------------------------------------------------------------------- unknown paths


@pytest.mark.parametrize("path", ["/v1beta/nothing", "/v1beta/models-and-more/x", "/api/gemini/x"])
async def test_unknown_gemini_paths(ac: httpx.AsyncClient, path: str) -> None:
    r = await ac.get(path)
    assert r.status_code == 404
    assert r.json() == gemini_envelope(404, f"Not found: GET {path}", "NOT_FOUND")
    assert r.headers["x-request-id"].startswith("req_") and "request-id" not in r.headers


@pytest.mark.parametrize("path", ["/v1/responsesfoo", "/responses-old", "/v1/chat/nothing", "/chat/x", "/api/openai/x"])
async def test_unknown_openai_paths(ac: httpx.AsyncClient, path: str) -> None:
    r = await ac.get(path)
    assert r.status_code == 404
    assert r.json() == openai_envelope(f"Not found: GET {path}")
    assert r.headers["x-request-id"].startswith("req_") and "request-id" not in r.headers


@pytest.mark.parametrize("path", ["/v1/nothing", "/nothing", "/v2/x", "/api/anthropic/v1/nothing"])
async def test_other_unknown_paths_answer_as_anthropic(ac: httpx.AsyncClient, path: str) -> None:
    r = await ac.post(path, json={})
    assert r.status_code == 404
    assert r.json() == anthropic_envelope(r, "not_found_error", f"Not found: POST {path}")
    assert r.headers["content-type"] == "application/json"


async def test_each_error_has_its_own_request_id(ac: httpx.AsyncClient) -> None:
    ids = {(await ac.get("/v1/nothing")).headers["request-id"] for _ in range(3)}
    assert len(ids) == 3


# --------------------------------------------------------------------------- wrong methods


@pytest.mark.parametrize(
    ("method", "path", "allow", "protocol"),
    [
        ("GET", "/v1/messages", "POST", "anthropic"),
        ("PUT", "/v1/messages/count_tokens", "POST", "anthropic"),
        ("POST", "/", "GET, HEAD", "anthropic"),
        ("DELETE", "/healthz", "GET, HEAD", "anthropic"),
        ("GET", "/v1/chat/completions", "POST", "openai"),
        ("PUT", "/v1/responses/resp_1", "DELETE, GET, HEAD", "openai"),
        ("PUT", "/v1beta/models/gemini-2.5-flash:generateContent", "POST", "gemini"),
    ],
)
async def test_a_wrong_method_is_405_in_the_paths_envelope(
    ac: httpx.AsyncClient, method: str, path: str, allow: str, protocol: str
) -> None:
    r = await ac.request(method, path)
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == set(allow.split(", "))  # Starlette joins a set: any order
    if protocol == "anthropic":
        assert r.json() == anthropic_envelope(r, "invalid_request_error", "Method Not Allowed")
    elif protocol == "openai":
        assert r.json() == openai_envelope("Method Not Allowed")
    else:
        assert r.json() == gemini_envelope(405, "Method Not Allowed", "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("path", "protocol"),
    [
        ("/v1beta/models/x", WireProtocol.GEMINI),
        ("/api/gemini/v1beta/x", WireProtocol.GEMINI),
        ("/v1/responses", WireProtocol.OPENAI_RESPONSES),
        ("/responses/x", WireProtocol.OPENAI_RESPONSES),
        ("/api/openai/v1/responses/x", WireProtocol.OPENAI_RESPONSES),
        ("/v1/chat/completions", WireProtocol.OPENAI_CHAT),
        ("/chat/x", WireProtocol.OPENAI_CHAT),
        ("/api/openai/v1/models", WireProtocol.OPENAI_CHAT),
        ("/v1/messages", WireProtocol.ANTHROPIC),
        ("/v1/models", WireProtocol.ANTHROPIC),
        ("/", WireProtocol.ANTHROPIC),
    ],
)
def test_door_for_path(fake: FakeUpstream, path: str, protocol: WireProtocol) -> None:
    from tests.pipeline.helpers import build_gateway

    gw = build_gateway(fake)
    assert gw.door_for_path(path) is gw.doors[protocol]


# --------------------------------------------------------------------------- health and root


async def test_healthz(ac: httpx.AsyncClient) -> None:
    r = await ac.get("/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    # Patterns (claude-*, gemini-*) are not models: 12 named models in the test config, and the
    # -thinking variants of the 7 whose upstream model can think.
    assert r.json() == {
        "status": "ok",
        "providers": ["anth", "anth-slow", "dead", "gem", "local", "local-slow", "oai"],
        "models": 19,
    }


async def test_healthz_needs_no_key_and_answers_head(ac: httpx.AsyncClient) -> None:
    r = await ac.head("/healthz")
    assert r.status_code == 200 and r.content == b""


@pytest.mark.parametrize("path", ["/", "/api/hello"])
async def test_root(ac: httpx.AsyncClient, path: str) -> None:
    r = await ac.get(path)
    assert (r.status_code, r.content) == (200, b'{"name":"modelgate","status":"ok"}')
    assert r.headers["content-type"] == "application/json"
    head = await ac.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(r.content))


# --------------------------------------------------------------------------- the crash handler


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret internals")


async def test_a_crash_outside_the_chain_is_a_500_in_the_envelope(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(gw.catalog, "listed", boom)  # /healthz counts the models
    async with asgi_client(gw, raise_app_exceptions=False) as client:
        r = await client.get("/healthz")
    assert r.status_code == 500
    request_id = r.headers["request-id"]
    assert r.json() == anthropic_envelope(r, "api_error", f"internal error (request {request_id})")
    assert b"secret internals" not in r.content
    [logged] = [rec for rec in caplog.records if rec.levelno >= logging.ERROR and rec.name == "modelgate"]
    assert logged.getMessage() == f"unexpected error (request {request_id})"
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], RuntimeError)
    assert "secret internals" in caplog.text  # the traceback is in the log, only there


@pytest.mark.parametrize(
    ("door", "handler", "path", "expected"),
    [
        (
            "gemini",
            "dispatch",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            lambda message: gemini_envelope(500, message, "INTERNAL"),
        ),
        (
            "openai_chat",
            "completions",
            "/v1/chat/completions",
            lambda message: {"error": {"message": message, "type": "server_error", "param": None, "code": None}},
        ),
    ],
)
async def test_a_crash_in_a_handler_answers_in_the_paths_envelope(
    gw: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    door: str,
    handler: str,
    path: str,
    expected,
) -> None:
    monkeypatch.setattr(getattr(gw, door), handler, boom)  # before the app is built: routes bind their handler
    async with asgi_client(gw, raise_app_exceptions=False) as client:
        r = await client.post(path, json={})
    assert r.status_code == 500
    request_id = r.headers["x-request-id"]
    assert r.json() == expected(f"internal error (request {request_id})")
    assert any(
        rec.getMessage() == f"unexpected error (request {request_id})" and rec.exc_info for rec in caplog.records
    )


# --------------------------------------------------------------------------- lifespan and factory


async def test_the_lifespan_starts_and_closes_the_upstream_pool(fake: FakeUpstream) -> None:
    from tests.pipeline.helpers import build_gateway

    gw = build_gateway(fake)
    app = gw.asgi()
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []
    server_log = logging.getLogger("uvicorn.error")
    filters_seen: list[int] = []

    async def receive() -> dict[str, Any]:
        return next(events)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            filters_seen.append(len(server_log.filters))
            # Started: a request reaches the upstream through the pool.
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
                body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
                r = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
                assert r.status_code == 200

    before = len(server_log.filters)
    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert filters_seen == [before + 1]  # the refused-handshake filter, only while serving
    assert len(server_log.filters) == before
    async with asgi_client(gw) as client:  # closed: the pool refuses to work
        body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        r = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code >= 500


def test_refused_handshake_filter() -> None:
    from modelgate.app import _refused_handshake

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, None, None)

    assert _refused_handshake(record("closing handshake failed")) is True
    assert _refused_handshake(record("Exception in ASGI application")) is True
    assert _refused_handshake(record("WebSocket connection closed without completing handshake")) is False


def test_create_app_takes_a_config(fake: FakeUpstream) -> None:
    from tests.conftest import gateway_config

    config = parse_config({**gateway_config(fake), "master_key": "k"}, "test", env={})
    app = create_app(config)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {
        "/v1/messages",
        "/v1/chat/completions",
        "/v1/responses",
        "/v1beta/models/{target:path}",
        "/healthz",
    } <= paths


# --------------------------------------------------------------------------- the master key


def test_the_configured_master_key_wins(tmp_path) -> None:
    config = parse_config({"master_key": "mk-1", "server": {"data_dir": str(tmp_path)}}, "test", env={})
    assert ensure_master_key(config) == "mk-1"
    assert list(tmp_path.iterdir()) == []


def test_the_environment_master_key(tmp_path) -> None:
    config = parse_config({"server": {"data_dir": str(tmp_path)}}, "test", env={"MODELGATE_MASTER_KEY": "mk-env"})
    assert ensure_master_key(config) == "mk-env"


def test_a_master_key_is_generated_once_and_kept(tmp_path) -> None:
    data_dir = tmp_path / "data"
    config = parse_config({"server": {"data_dir": str(data_dir)}}, "test", env={})
    key = ensure_master_key(config)
    assert key.startswith("mg-master-") and len(key) > 40
    path = data_dir / "master_key"
    assert path.read_text() == key + "\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_master_key(config) == key  # read back, not regenerated


async def test_the_generated_key_authenticates(tmp_path, fake: FakeUpstream) -> None:
    from tests.conftest import gateway_config

    data = {**gateway_config(fake), "server": {"data_dir": str(tmp_path)}}
    gw = Gateway(parse_config(data, "test", env={}))
    key = (tmp_path / "master_key").read_text().strip()
    await gw.start()
    try:
        async with asgi_client(gw) as client:
            body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            ok = await client.post("/v1/messages", json=body, headers={"x-api-key": key})
            refused = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    finally:
        await gw.close()
    assert ok.status_code == 200
    assert refused.status_code == 401


# --------------------------------------------------------------------------- forgiving paths


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        (
            "/v1/v1/messages",
            {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
            ANTHROPIC_HEADERS,
        ),
        (
            "/v1/v1/messages/count_tokens",
            {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]},
            ANTHROPIC_HEADERS,
        ),
        (
            "/v1/v1/chat/completions",
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            OPENAI_HEADERS,
        ),
        ("/v1/v1/responses", {"model": "gpt-4o", "input": "hi"}, OPENAI_HEADERS),
    ],
)
async def test_a_base_url_written_with_v1_twice_still_works(
    ac: httpx.AsyncClient, fake: FakeUpstream, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert fake.requests()[-1]["path"] == path.removeprefix("/v1")


async def test_models_are_listed_under_v1_twice_too(ac: httpx.AsyncClient) -> None:
    r = await ac.get("/v1/v1/models", headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "claude-sonnet-4-6"


async def test_a_missing_anthropic_version_gets_the_default(ac: httpx.AsyncClient, fake: FakeUpstream) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    r = await ac.post("/v1/messages", json=body, headers={"x-api-key": ANTHROPIC_HEADERS["x-api-key"]})
    assert r.status_code == 200
    assert fake.last_request("/v1/messages")["headers"]["anthropic-version"] == "2023-06-01"


async def test_admin_providers_shows_key_pools_by_id_and_deployments(ac: httpx.AsyncClient) -> None:
    r = await ac.get("/admin/providers", headers={"authorization": OPENAI_HEADERS["authorization"]})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "providers"
    anth = next(p for p in body["providers"] if p["name"] == "anth")
    assert anth["keys"] == [{"id": "anth#0", "state": "ok", "seconds_left": None, "remote": False}]
    assert "sk-upstream" not in r.text  # ids only, never a key
    deployment = next(d for d in body["deployments"] if d["model"] == "claude-sonnet-4-6")
    assert (deployment["provider"], deployment["state"], deployment["failures"]) == ("anth", "closed", 0)
    assert (await ac.get("/admin/providers")).status_code == 401
