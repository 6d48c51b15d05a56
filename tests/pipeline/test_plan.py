"""The plan stage: one candidate route per call, and an unknown model refused in the door's words."""

from __future__ import annotations

import httpx
import pytest

from modelgate.app import Gateway
from modelgate.errors import NotFound
from modelgate.frontdoors.gemini import GeminiCall
from modelgate.pipeline.context import Call, Operation
from modelgate.pipeline.plan import Plan, make_plan
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
    Settlements,
    anthropic_body,
    chat_body,
    gemini_body,
    responses_body,
)


def call(model: str, operation: Operation = Operation.GENERATE) -> Call:
    return Call(operation, b"{}", {"model": model}, model, False)


@pytest.mark.parametrize(
    ("model", "provider", "upstream_model"),
    [
        ("claude-sonnet-4-6", "anth", "claude-sonnet-4-6"),
        ("sonnet", "anth", "claude-sonnet-4-6"),  # an alias
        ("claude-opus-9", "anth", "claude-opus-9"),  # the claude-* pattern
        ("qwen-local", "local", "qwen2.5:0.5b"),
        ("gpt-5-mini", "oai", "gpt-5-mini"),
        ("flash", "gem", "gemini-2.5-flash"),
        ("gemini-3-pro", "gem", "gemini-3-pro"),
    ],
)
def test_a_plan_holds_the_one_route_of_the_model(gw: Gateway, model: str, provider: str, upstream_model: str) -> None:
    plan = make_plan(gw.catalog, gw.anthropic, call(model))
    assert isinstance(plan, Plan)
    assert len(plan.candidates) == 1
    route = plan.candidates[0]
    assert route.provider is gw.providers[provider]
    assert route.upstream_model == upstream_model
    assert plan.candidates == (gw.catalog.resolve(model),)


def test_the_plan_does_not_depend_on_the_door(gw: Gateway) -> None:
    plans = {make_plan(gw.catalog, door, call("sonnet")) for door in gw.doors.values()}
    assert len(plans) == 1


def test_anthropic_not_found_wording(gw: Gateway) -> None:
    with pytest.raises(NotFound) as info:
        make_plan(gw.catalog, gw.anthropic, call("gpt-nothing"))
    assert (info.value.message, info.value.param) == ("model: no provider serves model 'gpt-nothing'", "model")


@pytest.mark.parametrize("door", ["openai_chat", "openai_responses"])
def test_openai_not_found_wording(gw: Gateway, door: str) -> None:
    with pytest.raises(NotFound) as info:
        make_plan(gw.catalog, getattr(gw, door), call("gpt-nothing"))
    assert info.value.message == "The model `gpt-nothing` does not exist or you do not have access to it."
    assert (info.value.code, info.value.status) == ("model_not_found", 404)


@pytest.mark.parametrize(
    ("version", "method", "operation"),
    [("v1beta", "generateContent", Operation.GENERATE), ("v1", "countTokens", Operation.COUNT_TOKENS)],
)
def test_gemini_not_found_wording(gw: Gateway, version: str, method: str, operation: Operation) -> None:
    gcall = GeminiCall(operation, b"{}", {}, "nothing-1", False, version, method, False)
    with pytest.raises(NotFound) as info:
        make_plan(gw.catalog, gw.gemini, gcall)
    assert info.value.message == (
        f"models/nothing-1 is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods."
    )


# --------------------------------------------------------------------------- on the wire


async def test_unknown_model_at_the_anthropic_door(ac: httpx.AsyncClient, settled: Settlements, fake) -> None:
    r = await ac.post("/v1/messages", json=anthropic_body("gpt-nothing"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 404
    assert r.json() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: no provider serves model 'gpt-nothing'"},
        "request_id": r.headers["request-id"],
    }
    ctx = settled.only
    assert (ctx.plan, ctx.attempts, ctx.status) == (None, [], 404)
    assert ctx.call is not None and ctx.call.model == "gpt-nothing"
    assert fake.requests() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/chat/completions", chat_body("gpt-nothing")), ("/v1/responses", responses_body("gpt-nothing"))],
)
async def test_unknown_model_at_the_openai_doors(ac: httpx.AsyncClient, settled: Settlements, path: str, body) -> None:
    r = await ac.post(path, json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "The model `gpt-nothing` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    assert r.headers["x-request-id"] == settled.only.request_id


async def test_unknown_model_at_the_gemini_door(ac: httpx.AsyncClient, settled: Settlements) -> None:
    r = await ac.post("/v1/models/nothing-1:streamGenerateContent", json=gemini_body(), headers=GEMINI_HEADERS)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": 404,
            "message": "models/nothing-1 is not found for API version v1, or is not supported for "
            "streamGenerateContent. Call ListModels to see the list of available models and their supported methods.",
            "status": "NOT_FOUND",
        }
    }
    assert r.headers["x-request-id"] == settled.only.request_id


async def test_the_plan_is_recorded(ac: httpx.AsyncClient, gw: Gateway, settled: Settlements) -> None:
    r = await ac.post("/v1/messages", json=anthropic_body("sonnet"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    plan = settled.only.plan
    assert plan is not None and plan.candidates == (gw.catalog.resolve("sonnet"),)
