"""Bad input and failing upstreams at the Gemini front door: Google's envelope, status names and
HTTP statuses, as the google-genai SDK and raw clients see them."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.conftest import MASTER_KEY, MAX_BODY
from tests.frontdoors.gemini_helpers import USER, array_chunks, post, sdk, sse_chunks, url

BODY = {"contents": [{"role": "user", "parts": [{"text": USER}]}]}


def envelope(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()
    assert set(body) == {"error"} and r.headers["content-type"].startswith("application/json")
    error = body["error"]
    assert error["code"] == r.status_code
    return r.status_code, error["status"], error["message"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "Invalid JSON payload received. Unexpected token.\n{not json\n ^"),
        (b"[1, 2]", 'Invalid JSON payload received. Unknown name "": Root element must be a message.'),
        (b"", "* GenerateContentRequest.contents: contents is not specified\n"),
        (b'{"contents": []}', "* GenerateContentRequest.contents: contents is not specified\n"),
        (b'{"contents": [{"role": "system", "parts": [{"text": "x"}]}]}', "Please use a valid role: user, model."),
        (
            b'{"contents": [{"parts": []}]}',
            "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
        ),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}], "foo": 1}',
            'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
        ),
        (
            b'{"contents": [{"parts": [{"txt": "x"}]}]}',
            "Invalid JSON payload received. Unknown name \"txt\" at 'contents[0].parts[0]': Cannot find field.",
        ),
    ],
)
def test_bad_requests_are_400_invalid_argument(gateway, content: bytes, message: str) -> None:
    r = post(gateway, "claude-sonnet-4-6", "generateContent", content)
    assert envelope(r) == (400, "INVALID_ARGUMENT", message)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
        ({**BODY, "tools": [{"code_execution": {}}]}, "tools[0].codeExecution"),
        ({**BODY, "cachedContent": "cachedContents/abc"}, "cachedContent"),
        ({**BODY, "generationConfig": {"candidateCount": 2}}, "generationConfig.candidateCount"),
        ({**BODY, "generationConfig": {"seed": 7}}, "generationConfig.seed"),
        ({**BODY, "generationConfig": {"responseMimeType": "text/x.enum"}}, "generationConfig.responseMimeType"),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}}]}]},
            "contents[0].parts[0].inlineData",
        ),
        (
            {
                "contents": [
                    {"parts": [{"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/x"}}]}
                ]
            },
            "contents[0].parts[0].fileData",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            "contents[0].parts[0].functionResponse",
        ),
        (
            {**BODY, "generationConfig": {"thinkingConfig": {"thinkingBudget": 100, "thinkingLevel": "low"}}},
            "generationConfig.thinkingConfig",
        ),
    ],
)
def test_what_cannot_be_translated_is_refused_by_name(gateway, fake, body: dict, field: str) -> None:
    r = post(gateway, "claude-sonnet-4-6", "generateContent", body)
    status, name, message = envelope(r)
    assert (status, name) == (400, "INVALID_ARGUMENT") and field in message, message
    assert not fake.requests()


def test_wrong_key_is_400_api_key_invalid(gateway) -> None:
    client = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=gateway.base_url))
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="claude-sonnet-4-6", contents=USER)
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert info.value.message == "API key not valid. Please pass a valid API key."
    details = info.value.details["error"]["details"]
    assert details[0]["reason"] == "API_KEY_INVALID" and details[0]["@type"].endswith("google.rpc.ErrorInfo")


def test_missing_key_is_403_permission_denied(gateway) -> None:
    r = post(gateway, "claude-sonnet-4-6", "generateContent", BODY, headers={})
    status, name, message = envelope(r)
    assert (status, name) == (403, "PERMISSION_DENIED") and message.startswith("Method doesn't allow unregistered")


def test_wrong_key_beats_bad_body(gateway) -> None:
    r = post(gateway, "claude-sonnet-4-6", "generateContent", b"{oops", headers={"x-goog-api-key": "wrong"})
    assert (
        envelope(r)[:2] == (400, "INVALID_ARGUMENT") and r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    )


@pytest.mark.parametrize(
    "auth", [{"query": f"key={MASTER_KEY}", "headers": {}}, {"headers": {"authorization": f"Bearer {MASTER_KEY}"}}]
)
def test_other_key_places(gateway, fake, auth: dict) -> None:
    assert post(gateway, "claude-sonnet-4-6", "generateContent", BODY, **auth).status_code == 200


def test_unknown_model_is_404_not_found(gateway) -> None:
    client = sdk(gateway, api_version="v1beta")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="nope-model", contents=USER)
    assert (info.value.code, info.value.status) == (404, "NOT_FOUND")
    assert info.value.message == (
        "models/nope-model is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )


def test_unknown_method_and_path(gateway) -> None:
    r = post(gateway, "claude-sonnet-4-6", "embedContent", BODY)
    assert envelope(r)[:2] == (404, "NOT_FOUND")
    r = httpx.post(gateway.base_url + "/v1beta/nothing", headers={"x-goog-api-key": MASTER_KEY})
    assert envelope(r)[:2] == (404, "NOT_FOUND")


def test_body_over_the_limit(gateway) -> None:
    body = {"contents": [{"parts": [{"text": "x" * (MAX_BODY + 10)}]}]}
    r = post(gateway, "claude-sonnet-4-6", "generateContent", body)
    assert envelope(r) == (400, "INVALID_ARGUMENT", f"Request payload size exceeds the limit: {MAX_BODY} bytes.")


def test_upstream_429_is_resource_exhausted_with_retry_info(gateway, fake) -> None:
    fake.script(error={"status": 429, "retry_after": 3})
    client = sdk(gateway)
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="claude-sonnet-4-6", contents=USER)
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")
    retry = info.value.details["error"]["details"]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]
    fake.script(error={"status": 429, "retry_after": 3})
    assert post(gateway, "claude-sonnet-4-6", "generateContent", BODY).headers["retry-after"] == "3"


@pytest.mark.parametrize(("answered", "status", "name"), [(529, 503, "UNAVAILABLE"), (500, 500, "INTERNAL")])
def test_upstream_server_errors(gateway, fake, answered: int, status: int, name: str) -> None:
    fake.script(error={"status": answered})
    client = sdk(gateway)
    with pytest.raises(errors.ServerError) as info:
        client.models.generate_content(model="claude-sonnet-4-6", contents=USER)
    assert (info.value.code, info.value.status) == (status, name)


def test_prompt_too_long_in_geminis_words(gateway, fake) -> None:
    fake.script(error={"status": 400, "message": "prompt is too long: 210000 tokens > 200000 maximum"})
    r = post(gateway, "claude-sonnet-4-6", "generateContent", BODY)
    message = "The input token count (210000) exceeds the maximum number of tokens allowed (200000)."
    assert envelope(r) == (400, "INVALID_ARGUMENT", message)


def test_unreachable_upstream(gateway) -> None:
    r = post(gateway, "dead-model", "generateContent", BODY)
    assert envelope(r)[:2] == (502, "UNAVAILABLE")


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_broken_translated_stream_ends_with_an_error_chunk(gateway, fake, model: str) -> None:
    body = {"contents": [{"parts": [{"text": "hi [[fake:break 6]]"}]}]}
    chunks = sse_chunks(post(gateway, model, "streamGenerateContent", body, query="alt=sse").content)
    assert chunks[-1] == {"error": chunks[-1]["error"]} and chunks[-1]["error"]["status"] == "UNAVAILABLE"
    assert "candidates" in chunks[0]
    elements = array_chunks(post(gateway, model, "streamGenerateContent", body).content)
    assert elements[-1]["error"]["code"] == 502


def test_sdk_raises_an_error_chunk_mid_stream(gateway, fake) -> None:
    fake.script(error={"status": 529, "after": 5})
    client = sdk(gateway)
    seen = []
    with pytest.raises(errors.ServerError) as info:
        for chunk in client.models.generate_content_stream(model="claude-sonnet-4-6", contents=USER):
            seen.append(chunk.text)
    assert (info.value.code, info.value.status) == (503, "UNAVAILABLE") and seen


def test_count_tokens_errors(gateway) -> None:
    r = httpx.post(url(gateway, "nope-model", "countTokens"), json=BODY, headers={"x-goog-api-key": MASTER_KEY})
    assert envelope(r)[:2] == (404, "NOT_FOUND")
    r = httpx.post(url(gateway, "qwen-local", "countTokens"), json={"foo": 1}, headers={"x-goog-api-key": MASTER_KEY})
    assert envelope(r)[:2] == (400, "INVALID_ARGUMENT")
