"""Model catalogs: one path, the caller's own shape; Gemini's list; LiteLLM-style model info with prices."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY


@pytest.fixture
def oai(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=MASTER_KEY, max_retries=0)


def test_openai_shape_without_anthropic_headers(oai: openai.OpenAI) -> None:
    models = oai.models.list()
    ids = [m.id for m in models]
    assert ids[:4] == [
        "claude-sonnet-4-6",
        "claude-sonnet-4-6-thinking",
        "claude-haiku-4-5",
        "claude-haiku-4-5-thinking",
    ]
    assert "qwen-local-thinking" not in ids and "gpt-4o-thinking" not in ids  # models that do not think
    first = models.data[0]
    assert (first.object, first.owned_by, isinstance(first.created, int)) == ("model", "anth", True)
    assert oai.models.retrieve("qwen-local").owned_by == "local"
    with pytest.raises(openai.NotFoundError) as info:
        oai.models.retrieve("nope")
    assert info.value.status_code == 404


def test_bare_models_path_is_openai_shaped(gateway) -> None:
    r = httpx.get(gateway.base_url + "/models", headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 200 and r.json()["object"] == "list"


def test_anthropic_shape_with_anthropic_version(gateway) -> None:
    r = httpx.get(gateway.base_url + "/v1/models", headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"})
    body = r.json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"}
    assert body["data"][0]["type"] == "model"


@pytest.mark.parametrize("auth", [{"headers": {"x-goog-api-key": MASTER_KEY}}, {"params": {"key": MASTER_KEY}}])
def test_gemini_shape_for_gemini_callers(gateway, auth: dict) -> None:
    for path in ("/v1beta/models", "/v1/models"):
        r = httpx.get(gateway.base_url + path, **auth)
        assert r.status_code == 200, r.text
        first = r.json()["models"][0]
        assert first["name"] == "models/claude-sonnet-4-6"
        assert first["inputTokenLimit"] == 200_000 and "generateContent" in first["supportedGenerationMethods"]
    one = httpx.get(gateway.base_url + "/v1beta/models/claude-sonnet-4-6", **auth)
    assert one.json()["displayName"] == "Claude Sonnet 4.6"


def test_gemini_paging(gateway) -> None:
    r = httpx.get(gateway.base_url + "/v1beta/models", params={"key": MASTER_KEY, "pageSize": 2}).json()
    assert len(r["models"]) == 2 and r["nextPageToken"] == "2"
    rest = httpx.get(gateway.base_url + "/v1beta/models", params={"key": MASTER_KEY, "pageToken": "2"}).json()
    assert rest["models"][0]["name"] != r["models"][0]["name"]


def test_model_info_has_provider_context_capabilities_and_prices(gateway) -> None:
    r = httpx.get(gateway.base_url + "/v2/model/info", headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 200
    info = {d["model_name"]: d["model_info"] for d in r.json()["data"]}
    sonnet = info["claude-sonnet-4-6"]
    assert sonnet["provider"] == "anth" and sonnet["provider_type"] == "anthropic"
    assert sonnet["max_input_tokens"] == 200_000
    assert sonnet["input_cost_per_token"] == pytest.approx(3e-6)
    assert sonnet["output_cost_per_token"] == pytest.approx(15e-6)
    assert sonnet["cache_read_input_token_cost"] == pytest.approx(0.3e-6)
    assert sonnet["supports_function_calling"] and sonnet["supports_vision"]
    assert info["qwen-local"]["max_output_tokens"] == 4096  # from the config
    assert info["qwen-local"]["input_cost_per_token"] is None  # unknown family, no configured price


def test_catalogs_need_a_key(gateway) -> None:
    assert httpx.get(gateway.base_url + "/v1/models").status_code == 401
    assert httpx.get(gateway.base_url + "/v2/model/info").status_code == 401
    r = httpx.get(gateway.base_url + "/v1/models", headers={"anthropic-version": "2023-06-01", "x-api-key": "bad"})
    assert r.json()["error"]["type"] == "authentication_error"
