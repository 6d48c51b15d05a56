"""Upstream API keys (``providers/keys.py``): a provider's pool hands its keys out in turn,
each with a printable id that never shows the secret."""

from __future__ import annotations

import dataclasses

import pytest

from modelgate.config import ProviderConfig
from modelgate.providers import build_provider
from modelgate.providers.http import HttpClient
from modelgate.providers.keys import KeyPool, UpstreamKey

SECRETS = ["sk-ant-first-0000", "sk-ant-second-1111", "sk-ant-third-2222"]


def test_pick_rotates_in_config_order() -> None:
    pool = KeyPool("anth", SECRETS)
    picked = [pool.pick() for _ in range(7)]
    assert [(k.id, k.secret) for k in picked if k is not None] == [
        ("anth#0", SECRETS[0]),
        ("anth#1", SECRETS[1]),
        ("anth#2", SECRETS[2]),
        ("anth#0", SECRETS[0]),
        ("anth#1", SECRETS[1]),
        ("anth#2", SECRETS[2]),
        ("anth#0", SECRETS[0]),
    ]
    assert pool.keys == [
        UpstreamKey("anth#0", SECRETS[0]),
        UpstreamKey("anth#1", SECRETS[1]),
        UpstreamKey("anth#2", SECRETS[2]),
    ]
    assert picked[0] is pool.keys[0] and picked[3] is pool.keys[0]


def test_one_key_is_always_the_one() -> None:
    pool = KeyPool("oai", ["sk-only"])
    assert [pool.pick() for _ in range(3)] == [UpstreamKey("oai#0", "sk-only")] * 3


def test_equal_secrets_still_get_their_own_ids() -> None:
    pool = KeyPool("p", ["same-secret", "same-secret"])
    assert [k.id for k in (pool.pick(), pool.pick(), pool.pick()) if k is not None] == ["p#0", "p#1", "p#0"]


def test_pools_turn_independently() -> None:
    a, b = KeyPool("a", ["a0", "a1"]), KeyPool("b", ["b0", "b1"])
    assert [k.id for k in (a.pick(), a.pick(), b.pick(), a.pick()) if k is not None] == ["a#0", "a#1", "b#0", "a#0"]


def test_no_keys_picks_none() -> None:
    pool = KeyPool("local", [])
    assert pool.keys == []
    assert [pool.pick() for _ in range(3)] == [None, None, None]


def test_the_secret_never_shows_when_printed() -> None:
    key = KeyPool("anth", SECRETS).pick()
    assert key is not None
    assert repr(key) == str(key) == f"{key}" == "UpstreamKey(id='anth#0')"
    pool = KeyPool("anth", SECRETS)
    for secret in SECRETS:
        assert secret not in repr(pool.keys)
    assert key.secret == SECRETS[0]  # still there for the auth header


def test_keys_are_frozen() -> None:
    key = UpstreamKey("anth#0", "sk-secret")
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.secret = "other"  # type: ignore[misc]
    assert not hasattr(key, "__dict__")


@pytest.mark.parametrize(
    ("kind", "base_url"),
    [
        ("anthropic", None),
        ("openai", None),
        ("gemini", None),
        ("openai-compatible", "http://127.0.0.1:11434/v1"),
    ],
)
def test_providers_own_a_pool_of_their_config_keys(kind: str, base_url: str | None) -> None:
    provider = build_provider(
        ProviderConfig(name="up", type=kind, base_url=base_url, api_keys=SECRETS[:2]), HttpClient()
    )
    assert [k.id for k in provider.keys.keys] == ["up#0", "up#1"]
    assert [provider.keys.pick(), provider.keys.pick(), provider.keys.pick()] == [
        UpstreamKey("up#0", SECRETS[0]),
        UpstreamKey("up#1", SECRETS[1]),
        UpstreamKey("up#0", SECRETS[0]),
    ]
    keyless = build_provider(ProviderConfig(name="free", type=kind, base_url=base_url), HttpClient())
    assert keyless.keys.pick() is None
