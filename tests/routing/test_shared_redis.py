"""Key rests and breakers shared through Redis (``routing/shared_redis.py``), between two
"instances" in one process: each a :class:`RedisRouting` with its own pools and breakers,
whose configs list the same keys in another order.

Redis is the local server (127.0.0.1:6379): a test fails, never skips, when it is down. Each
test gets its own key prefix (so its own channel) and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from tests.redis_helpers import REDIS_URL, delete_prefix

from modelgate.errors import ErrorKind, UpstreamHTTPError
from modelgate.providers.keys import KeyPool, key_fingerprint
from modelgate.routing.health import DeploymentHealth
from modelgate.routing.shared_redis import RedisRouting
from modelgate.testing.gateway_runner import free_port

SECRETS = ["sk-shared-a-0000", "sk-shared-b-1111", "sk-shared-c-2222"]
#: The longest an event may take from one instance to the other on a busy machine (the
#: measured figure, reported as a test property, is a few milliseconds).
PROPAGATION_BOUND = 0.5
DEPLOYMENTS = [("sonnet", "anth", "claude-sonnet-4-6"), ("sonnet", "anth-eu", "eu-sonnet")]


def refusal(status: int, retry_after: float | None = None) -> UpstreamHTTPError:
    kind = {401: ErrorKind.AUTHENTICATION, 403: ErrorKind.PERMISSION, 429: ErrorKind.RATE_LIMIT}[status]
    return UpstreamHTTPError("no", status=status, kind=kind, protocol="anthropic", retry_after=retry_after)


@dataclass
class Instance:
    shared: RedisRouting
    pool: KeyPool
    breakers: list[DeploymentHealth]

    def key_id(self, secret: str) -> str:
        return next(k.id for k in self.pool.keys if k.secret == secret)

    def key_state(self, secret: str) -> dict[str, object]:
        return next(s for s in self.pool.state() if s["id"] == self.key_id(secret))


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"mgtest:routing:{uuid.uuid4().hex}:"
    yield prefix
    await delete_prefix(prefix)


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    assert await client.ping()  # type: ignore[misc]  # redis-py types ping() for both clients at once
    yield client
    await client.aclose()


@pytest.fixture
async def instances(prefix: str) -> AsyncIterator[Callable[..., Instance]]:
    """A factory of instances on one prefix; each is started, and stopped at the end."""
    made: list[Instance] = []

    def make(secrets: Sequence[str] = SECRETS, url: str = REDIS_URL, **options: float) -> Instance:
        shared = RedisRouting(url, prefix, backoff=0.05, backoff_max=0.2, **options)
        pool = KeyPool("anth", secrets, cooldown=30, quarantine=3600)
        breakers = [DeploymentHealth(*d, threshold=2, cooloff=30) for d in DEPLOYMENTS]
        shared.attach([pool], breakers)
        instance = Instance(shared, pool, breakers)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        await instance.shared.close()


async def started(instance: Instance) -> Instance:
    await instance.shared.start()
    assert await instance.shared.wait_connected(5.0), "the subscription did not come up"
    return instance


async def until(check: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``check()`` holds (polled every millisecond); fails after ``timeout``."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            pytest.fail(f"not seen within {timeout} s")
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


async def test_a_rest_on_one_instance_is_seen_by_the_other_at_once_whatever_the_key_order(
    instances: Callable[..., Instance], record_property: Callable[[str, object], None]
) -> None:
    a = await started(instances(SECRETS))
    b = await started(instances([SECRETS[2], SECRETS[0], SECRETS[1]]))
    assert a.key_id(SECRETS[0]) == "anth#0" and b.key_id(SECRETS[0]) == "anth#1"
    assert a.pool.rest("anth#0", refusal(429, retry_after=5)) is True
    latency = await until(lambda: b.key_state(SECRETS[0])["state"] == "rate_limited")
    record_property("propagation_seconds", round(latency, 4))
    assert latency < PROPAGATION_BOUND
    assert b.key_state(SECRETS[0]) == {
        "id": "anth#1",
        "state": "rate_limited",
        "seconds_left": pytest.approx(5, abs=0.5),
        "remote": True,
    }
    assert a.key_state(SECRETS[0])["state"] == "rate_limited" and "remote" not in a.key_state(SECRETS[0])
    picked = [b.pool.pick() for _ in range(6)]
    assert SECRETS[0] not in [k.secret for k in picked if k is not None]
    assert [b.key_state(s)["state"] for s in SECRETS[1:]] == ["ok", "ok"]


async def test_a_shared_rest_expires_here_and_in_redis(
    instances: Callable[..., Instance], redis: aioredis.Redis, prefix: str
) -> None:
    a = await started(instances())
    b = await started(instances())
    a.pool.rest("anth#1", refusal(429, retry_after=1))
    await until(lambda: b.key_state(SECRETS[1])["state"] == "rate_limited")
    stored = f"{prefix}rest:{key_fingerprint('anth', SECRETS[1])}"
    assert 0 < await redis.pttl(stored) <= 1000  # the rest's own length: Redis forgets it with the key
    await asyncio.sleep(1.05)
    assert b.key_state(SECRETS[1]) == {"id": "anth#1", "state": "ok"}
    assert await redis.exists(stored) == 0
    assert {k.secret for k in (b.pool.pick() for _ in range(3)) if k is not None} == set(SECRETS)


async def test_a_refused_key_is_taken_out_on_every_instance(
    instances: Callable[..., Instance], redis: aioredis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await started(instances())
    b = await started(instances(list(reversed(SECRETS))))
    with caplog.at_level(logging.WARNING, logger="modelgate.keys"):
        assert a.pool.rest("anth#2", refusal(401)) is True
        await until(lambda: b.key_state(SECRETS[2])["state"] == "refused")
    assert b.key_state(SECRETS[2])["seconds_left"] == pytest.approx(3600, abs=1)
    ttl = await redis.pttl(f"{prefix}rest:{key_fingerprint('anth', SECRETS[2])}")
    assert 3590_000 < ttl <= 3600_000
    messages = [r.getMessage() for r in caplog.records]
    assert "upstream key anth#0 refused on another instance: out for 3600 s" in messages  # B's id of it
    assert all(SECRETS[2] not in m for m in messages)


async def test_breakers_open_and_close_on_every_instance(instances: Callable[..., Instance]) -> None:
    a = await started(instances())
    b = await started(instances())
    a_sonnet, b_sonnet = a.breakers[0], b.breakers[0]
    a_sonnet.failed()
    a_sonnet.failed()  # the threshold: A opens it
    await until(lambda: b_sonnet.state()["state"] == "open")
    assert b_sonnet.state() == {
        "model": "sonnet",
        "provider": "anth",
        "upstream_model": "claude-sonnet-4-6",
        "state": "open",
        "failures": 2,
        "seconds_left": pytest.approx(30, abs=0.5),
        "remote": True,
    }
    assert b.breakers[1].state()["state"] == "closed"  # the other deployment is another breaker
    b_sonnet.ok()  # B's request succeeded there (after its cool-off): closed everywhere
    await until(lambda: a_sonnet.state()["state"] == "closed")
    assert a_sonnet.failures == 0 and not a_sonnet.is_open(time.monotonic())
    b.breakers[1].failed()
    b.breakers[1].failed()  # and the other way round
    await until(lambda: a.breakers[1].state()["state"] == "open")


async def test_a_remote_open_then_one_local_failure_after_the_cooloff_opens_it_again(
    instances: Callable[..., Instance],
) -> None:
    a = await started(instances())
    b = await started(instances())
    a.breakers[0].failed()
    a.breakers[0].failed()
    await until(lambda: b.breakers[0].state()["state"] == "open")
    b.breakers[0].open_until = time.monotonic() - 1  # B's cool-off is over: half-open
    assert b.breakers[0].state()["state"] == "half-open"
    b.breakers[0].failed()  # one failure in half-open
    assert b.breakers[0].state()["state"] == "open" and "remote" not in b.breakers[0].state()


async def test_no_echo_an_event_is_published_once_and_applied_only_elsewhere(
    instances: Callable[..., Instance], redis: aioredis.Redis, prefix: str
) -> None:
    listener = redis.pubsub()
    await listener.subscribe(f"{prefix}events")
    a = await started(instances())
    b = await started(instances())
    a.pool.rest("anth#0", refusal(429, retry_after=9))
    a.breakers[0].failed()
    a.breakers[0].failed()
    await until(lambda: b.key_state(SECRETS[0])["state"] == "rate_limited" and b.breakers[0].is_open(time.monotonic()))
    await asyncio.sleep(0.2)  # time for an echo, were there one
    kinds = []
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # None also stands for the subscription's own confirmation
        message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message is not None:
            kinds.append(message["data"])
    await listener.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    assert len(kinds) == 2 and '"kind":"rest"' in kinds[0] and '"kind":"open"' in kinds[1]
    assert "remote" not in a.key_state(SECRETS[0]) and "remote" not in a.breakers[0].state()
    assert SECRETS[0] not in "".join(kinds)  # the fingerprint travels, never the key


async def test_an_instance_started_later_loads_the_rests_and_open_breakers_already_there(
    instances: Callable[..., Instance],
) -> None:
    a = await started(instances())
    a.pool.rest("anth#1", refusal(429, retry_after=20))
    a.breakers[1].failed()
    a.breakers[1].failed()
    await a.shared.flush()
    b = await started(instances(list(reversed(SECRETS))))  # connected: the state is loaded by now
    assert b.key_state(SECRETS[1])["state"] == "rate_limited"
    assert b.key_state(SECRETS[1])["seconds_left"] == pytest.approx(20, abs=1)
    assert b.breakers[1].state()["state"] == "open" and b.breakers[0].state()["state"] == "closed"


async def test_a_lost_subscription_comes_back_and_catches_up(
    instances: Callable[..., Instance], redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    a = await started(instances())
    b = await started(instances())
    with caplog.at_level(logging.INFO, logger="modelgate.routing.shared"):
        clients = await redis.client_list(_type="pubsub")
        mine = [c["id"] for c in clients if c.get("name") == f"modelgate-routing-{b.shared.origin}"]
        assert mine, clients
        await redis.client_kill_filter(_id=mine[0])
        a.pool.rest("anth#2", refusal(429, retry_after=20))  # B may be away when it is published
        await until(lambda: b.key_state(SECRETS[2])["state"] == "rate_limited")
        await until(lambda: b.shared.connected)
    messages = [r.getMessage() for r in caplog.records]
    assert any("Redis unreachable" in m for m in messages) and any("Redis is back" in m for m in messages), messages
    assert b.shared.describe() == {"shared": True, "backend": "redis", "connected": True}


async def test_without_redis_requests_still_get_keys_and_nothing_escapes(
    instances: Callable[..., Instance], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="modelgate.routing.shared"):
        a = instances(url=f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
        await a.shared.start()
        assert a.pool.rest("anth#0", refusal(429, retry_after=5)) is True  # queued, never raised
        a.breakers[0].failed()
        a.breakers[0].failed()
        assert [k.id for k in (a.pool.pick() for _ in range(4)) if k is not None] == [
            "anth#1",
            "anth#2",
            "anth#1",
            "anth#2",
        ]
        await a.shared.flush()  # the writes failed: logged
        assert not await a.shared.wait_connected(0.5)  # and the subscription keeps retrying
        a.pool.rest("anth#1", refusal(429, retry_after=5))
        await a.shared.flush()
    warnings = [r.getMessage() for r in caplog.records]
    assert len([m for m in warnings if "could not write to Redis" in m]) == 1  # once, not per change
    assert len([m for m in warnings if "Redis unreachable" in m]) == 1  # once, not per retry
    assert a.shared.describe() == {"shared": True, "backend": "redis", "connected": False}
    assert a.pool.state()[0]["state"] == "rate_limited" and a.breakers[0].state()["state"] == "open"


async def test_what_was_decided_while_redis_was_away_is_written_when_it_is_back(
    instances: Callable[..., Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = instances()  # not following yet
    b = await started(instances())

    def away(*args: object, **kwargs: object) -> None:
        raise aioredis.ConnectionError("Redis is away")

    with monkeypatch.context() as patch:
        patch.setattr(a.shared._client, "pipeline", away)
        a.pool.rest("anth#0", refusal(429, retry_after=20))
        a.breakers[0].failed()
        a.breakers[0].failed()
        await a.shared.flush()  # both writes failed (logged), the state is kept here
    b.pool.apply_rest(b.pool.fingerprints["anth#2"], "rate_limited", 20)  # learnt, not decided, by B
    await asyncio.sleep(0.1)
    assert b.key_state(SECRETS[0])["state"] == "ok" and b.breakers[0].state()["state"] == "closed"
    await started(a)  # back: A writes what it decided and still holds
    await until(lambda: b.key_state(SECRETS[0])["state"] == "rate_limited")
    await until(lambda: b.breakers[0].state()["state"] == "open")
    assert b.key_state(SECRETS[0])["seconds_left"] == pytest.approx(20, abs=1)
    await b.shared.flush()
    assert a.key_state(SECRETS[2])["state"] == "ok"  # what B only learnt, B does not pass on


async def test_a_stop_is_prompt_whenever_it_comes(prefix: str) -> None:
    """The subscriber is cancelled at stop wherever it is (connecting, loading, waiting for an
    event): it must end, not go on reading (a timed read of redis-py once swallowed the cancel)."""
    for pause in (0.0, 0.001, 0.005, 0.02, 0.05) * 4:
        shared = RedisRouting(REDIS_URL, prefix)
        await shared.start()
        await asyncio.sleep(pause)
        started_at = time.perf_counter()
        await shared.close()
        assert time.perf_counter() - started_at < 1.0
        assert shared._subscriber is not None and shared._subscriber.done()
