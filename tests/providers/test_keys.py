"""Upstream API keys (``providers/keys.py``): a provider's pool hands its keys out in turn,
each with a printable id that never shows the secret, and skips the keys the upstream refused
while they rest."""

from __future__ import annotations

import dataclasses

import pytest

from modelgate.config import ProviderConfig
from modelgate.errors import ErrorKind, UpstreamHTTPError, UpstreamTimeout
from modelgate.providers import build_provider
from modelgate.providers.http import HttpClient
from modelgate.providers.keys import KeyPool, UpstreamKey, key_fingerprint

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


# --------------------------------------------------------------------------- keys at rest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(status: int, retry_after: float | None = None) -> UpstreamHTTPError:
    kind = {401: ErrorKind.AUTHENTICATION, 403: ErrorKind.PERMISSION, 429: ErrorKind.RATE_LIMIT}.get(status)
    return UpstreamHTTPError(
        "no", status=status, kind=kind or ErrorKind.API_ERROR, protocol="anthropic", retry_after=retry_after
    )


def ids(pool: KeyPool, n: int) -> list[str]:
    return [k.id for k in (pool.pick() for _ in range(n)) if k is not None]


def test_a_rate_limited_key_rests_for_its_retry_after() -> None:
    clock = Clock()
    pool = KeyPool("p", SECRETS, clock=clock)
    assert pool.rest("p#1", refusal(429, retry_after=5)) is True
    assert ids(pool, 4) == ["p#0", "p#2", "p#0", "p#2"]
    assert pool.state()[1] == {"id": "p#1", "state": "rate_limited", "seconds_left": 5.0}
    clock.now += 5
    assert ids(pool, 3) == ["p#0", "p#1", "p#2"]
    assert pool.state()[1] == {"id": "p#1", "state": "ok"}


def test_without_retry_after_a_key_rests_for_the_cooldown_and_never_less_than_a_second() -> None:
    clock = Clock()
    pool = KeyPool("p", SECRETS, cooldown=7, clock=clock)
    pool.rest("p#0", refusal(429))
    pool.rest("p#1", refusal(429, retry_after=0))
    assert [s.get("seconds_left") for s in pool.state()] == [7.0, 1.0, None]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_out_for_the_quarantine(status: int) -> None:
    clock = Clock()
    pool = KeyPool("p", SECRETS, quarantine=600, clock=clock)
    assert pool.rest("p#0", refusal(status)) is True
    assert ids(pool, 3) == ["p#1", "p#2", "p#1"]
    clock.now += 599
    assert "p#0" not in ids(pool, 3)
    clock.now += 1
    assert "p#0" in ids(pool, 3)


@pytest.mark.parametrize(
    "error",
    [
        refusal(500),
        refusal(400),
        UpstreamTimeout("slow"),  # not the key's fault
    ],
)
def test_other_failures_do_not_rest_the_key(error: Exception) -> None:
    pool = KeyPool("p", SECRETS)
    assert pool.rest("p#0", error) is False  # type: ignore[arg-type]
    assert ids(pool, 3) == ["p#0", "p#1", "p#2"]


def test_no_key_no_rest() -> None:
    pool = KeyPool("p", SECRETS)
    assert pool.rest(None, refusal(429)) is False


def test_the_last_key_awake_never_rests() -> None:
    clock = Clock()
    pool = KeyPool("p", SECRETS[:2], clock=clock)
    assert pool.rest("p#0", refusal(429, 30)) is True
    assert pool.rest("p#1", refusal(401)) is False  # the requests keep going to the upstream
    assert ids(pool, 3) == ["p#1"] * 3
    clock.now += 30
    assert pool.rest("p#1", refusal(401)) is True  # p#0 is awake again
    assert ids(pool, 2) == ["p#0", "p#0"]
    single = KeyPool("one", ["sk-one"], clock=clock)
    assert single.rest("one#0", refusal(429, 5)) is False
    assert ids(single, 2) == ["one#0", "one#0"]


# --------------------------------------------------------------------------- rests shared with other instances


def test_a_key_is_named_between_instances_by_a_fingerprint_of_provider_and_secret() -> None:
    a, b = KeyPool("p", SECRETS), KeyPool("p", list(reversed(SECRETS)))
    assert a.fingerprints["p#0"] == b.fingerprints["p#2"] == key_fingerprint("p", SECRETS[0])
    assert len(set(a.fingerprints.values())) == 3
    assert key_fingerprint("q", SECRETS[0]) != key_fingerprint("p", SECRETS[0])  # another upstream's key
    assert all(secret not in str(a.fingerprints) for secret in SECRETS)


def test_a_rest_decided_here_is_reported_and_one_applied_from_elsewhere_is_not() -> None:
    reported: list[tuple[str, str, float]] = []

    class Events:
        def key_rested(self, pool: KeyPool, key_id: str, reason: str, seconds: float) -> None:
            reported.append((key_id, reason, seconds))

    clock = Clock()
    pool = KeyPool("p", SECRETS, clock=clock)
    pool.listeners.append(Events())  # type: ignore[arg-type]  # only the method a pool calls
    pool.rest("p#0", refusal(429, retry_after=4))
    assert pool.apply_rest(pool.fingerprints["p#1"], "refused", 60) == "p#1"
    assert reported == [("p#0", "rate_limited", 4.0)]
    assert pool.state()[1] == {"id": "p#1", "state": "refused", "seconds_left": 60.0, "remote": True}
    assert pool.apply_rest("0123456789abcdef", "refused", 60) is None  # not a key of this pool
    assert pool.apply_rest(pool.fingerprints["p#2"], "rate_limited", -1) is None  # over already


def test_a_remote_rest_shorter_than_the_one_held_changes_nothing() -> None:
    clock = Clock()
    pool = KeyPool("p", SECRETS, clock=clock)
    pool.rest("p#0", refusal(401))  # an hour
    pool.apply_rest(pool.fingerprints["p#0"], "rate_limited", 5)
    assert pool.state()[0] == {"id": "p#0", "state": "refused", "seconds_left": 3600.0}
    pool.apply_rest(pool.fingerprints["p#1"], "rate_limited", 5)
    pool.apply_rest(pool.fingerprints["p#1"], "rate_limited", 9)  # a later, longer one wins
    assert pool.state()[1]["seconds_left"] == 9.0


def test_when_remote_rests_leave_no_key_awake_the_one_back_soonest_is_picked() -> None:
    clock = Clock()
    pool = KeyPool("p", SECRETS, clock=clock)
    for i, seconds in ((0, 3600.0), (1, 8.0), (2, 3.0)):
        pool.apply_rest(pool.fingerprints[f"p#{i}"], "rate_limited", seconds)
    assert ids(pool, 3) == ["p#2", "p#2", "p#2"]  # never a refusal made up: a key all the same
    assert pool.rest("p#2", refusal(429, retry_after=5)) is False  # the last key awake is not rested here
    clock.now += 8
    assert ids(pool, 4) == ["p#1", "p#2", "p#1", "p#2"]
