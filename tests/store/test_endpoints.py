from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from modelgate.store import (
    Database,
    EndpointRecord,
    EndpointStore,
    LedgerRow,
    LedgerStore,
    StoreConflict,
    StoreNotFound,
)
from modelgate.store.endpoints import new_endpoint_id
from tests.store.conftest import T0, Clock


@pytest.fixture
def store(db: Database, clock: Clock) -> EndpointStore:
    return EndpointStore(db, clock=clock)


def test_ids_are_short_lowercase_and_url_safe() -> None:
    ids = {new_endpoint_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"ep_[a-z0-9]{12}", i) for i in ids)


async def test_round_trip(store: EndpointStore) -> None:
    made = await store.create(
        "billing-bot",
        description="the billing assistant",
        keys=["key_a", "key_b"],
        models=["claude-*", "gpt-5"],
        log_bodies=True,
        metadata={"owner": "finance"},
    )
    assert made == EndpointRecord(
        id=made.id,
        name="billing-bot",
        description="the billing assistant",
        keys=("key_a", "key_b"),
        models=("claude-*", "gpt-5"),
        log_bodies=True,
        disabled_at=None,
        metadata={"owner": "finance"},
        created_at=T0,
        updated_at=T0,
    )
    assert made.id.startswith("ep_") and made.created_at.tzinfo is UTC
    assert await store.get(made.id) == made
    assert await store.get("billing-bot") == made


async def test_defaults_accept_everything(store: EndpointStore) -> None:
    made = await store.create("open")
    assert (made.description, made.keys, made.models, made.log_bodies, made.metadata) == ("", (), (), False, {})
    assert await store.get(made.id) == made


async def test_listed_by_name(store: EndpointStore) -> None:
    for name in ("b", "c", "a"):
        await store.create(name)
    assert [e.name for e in await store.list_all()] == ["a", "b", "c"]


async def test_update_is_partial(store: EndpointStore, clock: Clock) -> None:
    made = await store.create("app", models=["m1"], keys=["key_1"])
    later = clock.advance(5)
    updated = await store.update("app", name="app2", models=[], description="now open")
    assert (updated.name, updated.models, updated.keys, updated.description) == ("app2", (), ("key_1",), "now open")
    assert (updated.created_at, updated.updated_at) == (T0, later)
    assert await store.get(made.id) == updated
    assert await store.update(made.id) == updated  # nothing to change: not even updated_at


async def test_disable_and_enable(store: EndpointStore, clock: Clock) -> None:
    made = await store.create("app")
    when = clock.advance(1)
    disabled = await store.disable("app")
    assert disabled.disabled_at == when and disabled.updated_at == when
    clock.advance(1)
    assert await store.disable(made.id) == disabled  # already disabled: unchanged
    enabled = await store.enable(made.id)
    assert enabled.disabled_at is None
    assert await store.enable(made.id) == enabled
    assert await store.get(made.id) == enabled


async def test_delete(store: EndpointStore) -> None:
    made = await store.create("gone")
    kept = await store.create("kept")
    assert await store.delete("gone") == made
    assert await store.list_all() == [kept]
    with pytest.raises(StoreNotFound, match=f"no endpoint with id or name '{made.id}'"):
        await store.get(made.id)
    with pytest.raises(StoreNotFound):
        await store.delete(made.id)


async def test_conflicts_misses_and_bad_values(store: EndpointStore) -> None:
    await store.create("taken")
    other = await store.create("other")
    with pytest.raises(StoreConflict, match="'taken' already exists"):
        await store.create("taken")
    with pytest.raises(StoreConflict, match="'taken' already exists"):
        await store.update(other.id, name="taken")
    with pytest.raises(StoreNotFound):
        await store.update("nobody", description="x")
    with pytest.raises(ValueError, match="non-empty"):
        await store.create(" ")
    with pytest.raises(TypeError, match="not one string"):
        await store.create("x", models="claude-*")
    with pytest.raises(TypeError, match="unknown endpoint field"):
        await store.update("other", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="naive"):
        await store.update("other", disabled_at=datetime(2026, 1, 1))


async def test_usage_grouped_by_endpoint_id(db: Database, store: EndpointStore) -> None:
    app = await store.create("app")
    ledger = LedgerStore(db)

    def row(n: int, endpoint_id: str | None, cost: float) -> LedgerRow:
        return LedgerRow(
            request_id=f"req_{n}", at=T0, key_id=None, team_id=None, door="anthropic", endpoint="messages",
            model="m", input_tokens=10, output_tokens=5, cost_usd=cost, endpoint_id=endpoint_id,
        )  # fmt: skip

    await ledger.insert_many([row(1, app.id, 1.0), row(2, app.id, 2.0), row(3, None, 0.5), row(4, "ep_deleted", 4.0)])
    groups = await ledger.summary(group_by="endpoint_id")
    assert [(g.group, g.name, g.requests, g.cost_usd, g.input_tokens) for g in groups] == [
        ("ep_deleted", None, 1, 4.0, 10),
        (app.id, "app", 2, 3.0, 20),
        (None, None, 1, 0.5, 10),
    ]
