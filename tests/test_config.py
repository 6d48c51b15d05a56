"""Config loading: env interpolation, defaults from the environment, errors with file and field path."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from modelgate.cli import main
from modelgate.config import ConfigError, load_config

GOOD = """
providers:
  - name: anth
    type: anthropic
    base_url: https://api.anthropic.com/
    api_keys: ["${ANTHROPIC_API_KEY}"]
  - name: local
    type: openai-compatible
    base_url: http://127.0.0.1:11434/v1
models:
  - name: claude-sonnet-4-6
    provider: anth
    upstream_model: claude-sonnet-4-6
  - name: qwen-local
    provider: local
    upstream_model: ${LOCAL_MODEL:-qwen2.5:0.5b}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modelgate.yaml"
    path.write_text(text)
    return path


def test_good_file_with_env_interpolation_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={"ANTHROPIC_API_KEY": "sk-ant-xyz"})
    anth, local = config.providers
    assert anth.api_keys == ["sk-ant-xyz"]
    assert anth.url == "https://api.anthropic.com"  # trailing slash dropped
    assert local.url == "http://127.0.0.1:11434/v1"
    assert config.models[1].upstream_model == "qwen2.5:0.5b"
    assert config.server.port == 8080 and config.server.host == "127.0.0.1"


def test_master_key_from_environment(tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": "k", "MODELGATE_MASTER_KEY": "mk"}
    assert load_config(write(tmp_path, GOOD), env=env).master_key == "mk"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD, "providers.0.api_keys.0: environment variable ANTHROPIC_API_KEY is not set"),
        ("providers:\n  - name: a\n    type: antropic\n", "providers.0.type: Input should be 'anthropic'"),
        ("providers:\n  - name: a\n    type: anthropic\n    base_url: ftp://x\n", "providers.0.base_url: must be"),
        ("models:\n  - name: m\n    provider: nope\n", "models.0.provider: no provider named 'nope'"),
        ("server:\n  port: 99999\n", "server.port: Input should be less than or equal to 65535"),
        ("surprise: 1\n", "surprise: Extra inputs are not permitted"),
        ("providers: [\n", "line 2"),
        ("- a\n- b\n", "the top level must be a mapping"),
        (
            "providers:\n  - {name: a, type: openai-compatible}\n",
            "providers.0.base_url: required for type openai-compatible",
        ),
        (
            "providers:\n  - {name: a, type: anthropic}\n  - {name: a, type: anthropic}\n",
            "duplicate provider name 'a'",
        ),
    ],
)
def test_bad_files_name_the_file_and_field(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "absent.yaml", env={})


def test_no_file_serves_providers_from_environment() -> None:
    config = load_config(None, env={"ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "sk-oai"})
    assert [(p.name, p.type, p.api_keys) for p in config.providers] == [
        ("anthropic", "anthropic", ["sk-ant"]),
        ("openai", "openai", ["sk-oai"]),
    ]
    names = {m.name for m in config.models}
    assert {"claude-sonnet-4-6", "claude-*", "gpt-4o", "gpt-*"} <= names


def test_no_file_and_no_keys_still_starts() -> None:
    config = load_config(None, env={})
    assert config.providers == [] and config.models == []


def test_cli_config_check(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write(tmp_path, GOOD)
    ok = runner.invoke(main, ["config", "check", str(good)], env={"ANTHROPIC_API_KEY": "k"})
    assert ok.exit_code == 0, ok.output
    assert "ok (2 providers, 2 models)" in ok.output
    bad = runner.invoke(main, ["config", "check", str(good)], env={"ANTHROPIC_API_KEY": ""})
    assert bad.exit_code == 2
    assert "providers.0.api_keys: an API key is empty" in bad.output


def test_no_file_takes_base_urls_from_the_sdk_variables() -> None:
    env = {
        "ANTHROPIC_API_KEY": "a",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9999",
        "OPENAI_API_KEY": "o",
        "OPENAI_BASE_URL": "http://127.0.0.1:9998/v1",
        "GEMINI_API_KEY": "g",
        "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9997",
    }
    config = load_config(None, env=env)
    assert [(p.type, p.url, p.api_keys) for p in config.providers] == [
        ("anthropic", "http://127.0.0.1:9999", ["a"]),
        ("openai", "http://127.0.0.1:9998/v1", ["o"]),
        ("gemini", "http://127.0.0.1:9997", ["g"]),
    ]
    assert {"gemini-2.5-flash", "gemini-*"} <= {m.name for m in config.models}


def test_a_base_url_pointing_at_the_gateway_itself_is_ignored() -> None:
    env = {"ANTHROPIC_API_KEY": "a", "ANTHROPIC_BASE_URL": "http://127.0.0.1:8080", "MODELGATE_PORT": "8080"}
    assert load_config(None, env=env).providers[0].url == "https://api.anthropic.com"
    env["MODELGATE_PORT"] = "9000"
    assert load_config(None, env=env).providers[0].url == "http://127.0.0.1:8080"


# --------------------------------------------------------------------------- routing

ROUTED = """
providers:
  - {name: anth, type: anthropic, api_keys: [k1, k2]}
  - {name: local, type: openai-compatible, base_url: "http://127.0.0.1:11434/v1"}
models:
  - name: sonnet
    deployments:
      - {provider: anth, upstream_model: claude-sonnet-4-6, weight: 3}
      - {provider: local, upstream_model: qwen, priority: 1}
    fallbacks: [haiku, gpt-4o]
  - {name: haiku, provider: anth, upstream_model: claude-haiku-4-5}
  - {name: "gpt-*", provider: local}
router:
  attempts: 2
  fallback_on: [overloaded, context_window]
"""


def test_deployments_fallbacks_and_router(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ROUTED), env={})
    sonnet = config.models[0]
    assert [(d.provider, d.upstream_model, d.weight, d.priority) for d in sonnet.targets] == [
        ("anth", "claude-sonnet-4-6", 3.0, 0),
        ("local", "qwen", 1.0, 1),
    ]
    assert sonnet.fallbacks == ("haiku", "gpt-4o")
    assert [(d.provider, d.upstream_model) for d in config.models[1].targets] == [("anth", "claude-haiku-4-5")]
    assert (config.router.attempts, config.router.fallback_on) == (2, ("overloaded", "context_window"))
    assert config.router.deadline == 85 and config.providers[0].first_byte_timeout == 60


@pytest.mark.parametrize(
    ("models", "problem"),
    [
        (
            "  - {name: m, provider: anth, deployments: [{provider: anth}]}\n",
            "models.0: give either provider (and upstream_model) or deployments, not both",
        ),
        ("  - {name: m}\n", "models.0: provider: Field required (or deployments)"),
        (
            "  - {name: m, deployments: [{provider: nope}]}\n",
            "models.0.deployments.0.provider: no provider named 'nope'",
        ),
        (
            "  - {name: m, deployments: [{provider: anth, weight: 0}]}\n",
            "models.0.deployments.0.weight: Input should be",
        ),
        ("  - {name: m, provider: anth, fallbacks: [m]}\n", "models.0.fallbacks.0: a model cannot fall back to itself"),
        ("  - {name: m, provider: anth, fallbacks: [x]}\n", "models.0.fallbacks.0: no model named 'x'"),
    ],
)
def test_bad_routing_names_the_field(tmp_path: Path, models: str, problem: str) -> None:
    text = "providers:\n  - {name: anth, type: anthropic}\nmodels:\n" + models
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("router", "problem"),
    [
        ("attempts: 0", "router.attempts: Input should be greater than or equal to 1"),
        ("fallback_on: [sometimes]", "router.fallback_on.0: Input should be 'rate_limit'"),
        ("deadline: 0", "router.deadline: Input should be greater than 0"),
        ("retries: 3", "router.retries: Extra inputs are not permitted"),
        ("auto: {models: [nope]}", "router.auto.models.0: no model named 'nope'"),
        ("auto: {policy: fastest, models: [m]}", "router.auto.policy: Input should be 'priority'"),
        ("auto: {models: []}", "router.auto.models: Tuple should have at least 1 item"),
        ("title_model: nope", "router.title_model: no model named 'nope'"),
        ("warmup: drop", "router.warmup: Input should be 'local' or 'upstream'"),
    ],
)
def test_bad_router_settings_name_the_field(tmp_path: Path, router: str, problem: str) -> None:
    models = "providers:\n  - {name: anth, type: anthropic}\nmodels:\n  - {name: m, provider: anth}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"{models}router:\n  {router}\n"), env={})
    assert problem in str(info.value)


def test_claude_code_background_settings(tmp_path: Path) -> None:
    """Warm-ups are answered locally unless the config says otherwise; the title model is
    any served name, a pattern's included."""
    models = "providers:\n  - {name: anth, type: anthropic}\nmodels:\n  - {name: claude-*, provider: anth}\n"
    default = load_config(write(tmp_path, models), env={})
    assert (default.router.warmup, default.router.title_model) == ("local", None)
    text = f"{models}router:\n  warmup: upstream\n  title_model: claude-haiku-4-5\n"
    config = load_config(write(tmp_path, text), env={})
    assert (config.router.warmup, config.router.title_model) == ("upstream", "claude-haiku-4-5")
