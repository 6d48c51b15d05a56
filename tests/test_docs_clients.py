"""docs/clients.md: every recipe is what the tests use, so none can go stale.

* the Python recipes run, as written (the base URL and the key put in), against the real
  gateway process of ``tests/conftest.py`` with a virtual key, and print the fake's answer;
* the curl recipes run with ``curl`` against it;
* OpenCode's ``baseURL`` plus the path its AI SDK provider adds reaches the model endpoint;
* the CLI recipes are what the end-to-end runners configure the real CLIs with (checked
  here without the CLIs; ``tests/e2e`` and ``tests/tenancy/test_clis.py`` run them);
* each endpoint form is its key form with only the base URL changed;
* the document's blocks are the package's (``src/modelgate/recipes.md``, which the portal's
  endpoint page fills in), so the three cannot drift.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate.testing.gateway_runner import GatewayProcess
from tests.conftest import MASTER_KEY
from tests.e2e import netns_codex, netns_gemini, netns_run
from tests.recipes import BASE_URL, ENDPOINT_ID, KEY, MODEL, doc_recipes, exports, recipe, recipes

#: The protocol each recipe speaks: its endpoint form's ``/v1/<id>/<protocol>``.
PROTOCOLS = {
    "claude-code-env": "anthropic",
    "claude-code-settings": "anthropic",
    "codex-config": "openai",
    "gemini-cli-env": "gemini",
    "opencode-anthropic": "anthropic",
    "opencode-openai": "openai",
    "anthropic-sdk": "anthropic",
    "openai-sdk": "openai",
    "google-genai": "gemini",
    "curl-anthropic": "anthropic",
    "curl-openai": "openai",
    "curl-gemini": "gemini",
}
#: Recipes with no URL in them (the key in the environment, the auth method).
WITHOUT_URL = ("codex-env", "gemini-cli-settings")
#: What the fake upstream answers a plain "Hello".
ANSWER = "Hello from the fake upstream. You said: Hello"


@pytest.fixture(scope="module")
def virtual_key(gateway: GatewayProcess) -> str:
    """A virtual key of the gateway process, created through its admin API."""
    r = httpx.post(
        f"{gateway.base_url}/admin/keys",
        json={"name": "docs-recipes"},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    secret: str = r.json()["key"]
    assert secret.startswith("sk-mg-")
    return secret


@pytest.fixture(scope="module")
def endpoint_id(gateway: GatewayProcess) -> str:
    """A per-application endpoint of the gateway process, created through its admin API."""
    r = httpx.post(
        f"{gateway.base_url}/admin/endpoints",
        json={"name": "docs-recipes"},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    made: str = r.json()["id"]
    assert made.startswith("ep_")
    return made


def endpoint_form(name: str) -> str:
    """The text an endpoint recipe must have: its key form's, with the endpoint's base URL."""
    protocol = PROTOCOLS[name]
    text = recipe(name).text
    if protocol == "openai":  # OpenAI clients take the base URL with its /v1
        return text.replace(f"{BASE_URL}/v1", f"{BASE_URL}/v1/{ENDPOINT_ID}/openai")
    return text.replace(BASE_URL, f"{BASE_URL}/v1/{ENDPOINT_ID}/{protocol}")


# --------------------------------------------------------------------------- the document


def test_the_document_shows_the_packages_recipes() -> None:
    """docs/clients.md and the package's recipes.md (what the portal fills in): the same blocks,
    in the same order, under the same client headings."""
    assert list(doc_recipes().values()) == list(recipes().values())


def test_the_document_holds_every_recipe_once() -> None:
    names = set(PROTOCOLS) | set(WITHOUT_URL) | {f"{name}@endpoint" for name in PROTOCOLS}
    names -= {"codex-env@endpoint"}
    assert set(recipes()) == names


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_an_endpoint_recipe_is_its_key_recipe_with_the_endpoint_url(name: str) -> None:
    assert BASE_URL in recipe(name).text
    assert recipe(f"{name}@endpoint").text == endpoint_form(name)
    assert f"/v1/{ENDPOINT_ID}/{PROTOCOLS[name]}" in recipe(f"{name}@endpoint").text


@pytest.mark.parametrize("name", sorted(recipes()))
def test_every_recipe_is_well_formed(name: str) -> None:
    r = recipe(name)
    if r.language == "json":
        json.loads(r.text)
    elif r.language == "toml":
        tomllib.loads(r.text)
    elif r.language == "python":
        compile(r.text, name, "exec")
    else:
        assert r.language == "sh"
        subprocess.run(["bash", "-n", "-c", r.text], check=True)
    assert KEY in r.text or name in WITHOUT_URL or name.startswith(("codex-config", "opencode-"))


# --------------------------------------------------------------------------- run against the gateway


def forms(*names: str) -> list[str]:
    """Each recipe named, and its endpoint form."""
    return [form for name in names for form in (name, f"{name}@endpoint")]


@pytest.mark.parametrize("name", forms("anthropic-sdk", "openai-sdk", "google-genai"))
def test_an_sdk_recipe_runs(name: str, gateway: GatewayProcess, virtual_key: str, endpoint_id: str) -> None:
    code = recipe(name).fill(gateway.base_url, virtual_key, endpoint_id=endpoint_id)
    assert code != recipe(name).text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), {"__name__": "__recipe__"})
    assert out.getvalue() == ANSWER + "\n"


def _curl(text: str) -> Any:
    assert shutil.which("curl"), "the curl recipes need curl (Debian package curl)"
    done = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("form", ["", "@endpoint"])
def test_the_curl_recipes_run(form: str, gateway: GatewayProcess, virtual_key: str, endpoint_id: str) -> None:
    def run(name: str) -> Any:
        return _curl(recipe(name + form).fill(gateway.base_url, virtual_key, endpoint_id=endpoint_id))

    message = run("curl-anthropic")
    assert (message["type"], message["model"], message["content"][0]["text"]) == ("message", MODEL, ANSWER)
    chat = run("curl-openai")
    assert (chat["object"], chat["choices"][0]["message"]["content"]) == ("chat.completion", ANSWER)
    gemini = run("curl-gemini")
    assert gemini["candidates"][0]["content"]["parts"][0]["text"] == ANSWER


OPENCODE_PATHS = [(name, path) for name in forms("opencode-anthropic") for path in ["/messages"]] + [
    (name, "/chat/completions") for name in forms("opencode-openai")
]


@pytest.mark.parametrize(("name", "path"), OPENCODE_PATHS)
def test_opencode_reaches_the_model_endpoint(
    name: str, path: str, gateway: GatewayProcess, virtual_key: str, endpoint_id: str
) -> None:
    """OpenCode's AI SDK provider adds ``path`` to ``baseURL`` and sends the key as its protocol does."""
    config = json.loads(recipe(name).fill(gateway.base_url, virtual_key, endpoint_id=endpoint_id))
    (provider,) = config["provider"].values()
    options = provider["options"]
    assert options["apiKey"] == "{env:MODELGATE_API_KEY}"
    model = config["model"].split("/", 1)[1]
    assert model in provider["models"]
    messages = [{"role": "user", "content": "Hello"}]
    if provider["npm"] == "@ai-sdk/anthropic":
        headers = {"x-api-key": virtual_key, "anthropic-version": "2023-06-01"}
        body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": messages}
    else:
        assert provider["npm"] == "@ai-sdk/openai-compatible"
        headers, body = {"authorization": f"Bearer {virtual_key}"}, {"model": model, "messages": messages}
    for listed in provider["models"]:
        r = httpx.post(options["baseURL"] + path, json={**body, "model": listed}, headers=headers, timeout=30)
        assert r.status_code == 200, (listed, r.text)


# --------------------------------------------------------------------------- the CLIs' configurations


def test_claude_code_is_configured_from_its_recipes(tmp_path: Path) -> None:
    env = netns_run.claude_env(tmp_path, "http://127.0.0.1:1234", "sk-mg-k", [])
    assert {k: v for k, v in env.items() if k.startswith("ANTHROPIC_")} == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:1234",
        "ANTHROPIC_API_KEY": "sk-mg-k",
    }
    # The settings file sets the same variables (the tenancy runs give the key that way).
    settings_env = netns_run.claude_env(tmp_path, "http://127.0.0.1:1234", "sk-mg-k", [], settings=True)
    assert not [k for k in settings_env if k.startswith("ANTHROPIC_")]
    netns_run.write_settings(tmp_path, "http://127.0.0.1:1234", "sk-mg-k")
    written = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert written == {"env": {k: v for k, v in env.items() if k.startswith("ANTHROPIC_")}}
    assert json.loads(recipe("claude-code-settings").text)["env"] == exports(recipe("claude-code-env").text)


def test_codex_is_configured_from_its_recipes() -> None:
    written = tomllib.loads(netns_codex.config_toml("http://127.0.0.1:1234", "gpt-5.5"))
    documented = tomllib.loads(recipe("codex-config").text)
    assert written["model"] == "gpt-5.5" and written["model_provider"] == documented["model_provider"]
    provider = written["model_providers"]["modelgate"]
    assert provider == {
        **documented["model_providers"]["modelgate"],
        "base_url": "http://127.0.0.1:1234/v1",
        "supports_websockets": True,  # the tests' own additions
        "request_max_retries": 0,
    }
    assert exports(recipe("codex-env").text) == {netns_codex.KEY_VARIABLE: KEY}


def test_gemini_cli_is_configured_from_its_recipes() -> None:
    documented = json.loads(recipe("gemini-cli-settings").text)
    assert {k: v for k, v in netns_gemini.settings().items() if k in documented} == documented
    assert exports(recipe("gemini-cli-env").text) == {"GOOGLE_GEMINI_BASE_URL": BASE_URL, "GEMINI_API_KEY": KEY}
