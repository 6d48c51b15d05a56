from __future__ import annotations

import pytest
import sqlalchemy as sa

from modelgate.store import Database, StoreConflict, StoreNotFound, UserStore
from modelgate.store.schema import users
from modelgate.store.users import check_password, hash_password
from tests.store.conftest import T0, Clock

PASSWORD = "correct horse battery"


@pytest.fixture
def store(db: Database, clock: Clock) -> UserStore:
    return UserStore(db, clock=clock)


def test_a_hash_is_salted_and_checks_only_its_password() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two and one.startswith("scrypt$16384$8$1$")
    assert PASSWORD not in one
    assert check_password(PASSWORD, one) and check_password(PASSWORD, two)
    assert not check_password(PASSWORD + "!", one)
    assert not check_password(PASSWORD, "bcrypt$whatever") and not check_password(PASSWORD, "scrypt$x$y")


def test_passwords_too_short_or_too_long_are_refused() -> None:
    with pytest.raises(ValueError, match="12 to 1024"):
        hash_password("short")
    with pytest.raises(ValueError, match="12 to 1024"):
        hash_password("x" * 1025)


async def test_create_authenticate_and_never_store_the_password(store: UserStore, db: Database) -> None:
    user = await store.create("ops", PASSWORD)
    assert user.name == "ops" and user.id.startswith("user_") and user.created_at == T0
    assert await store.authenticate("ops", PASSWORD) == user
    assert await store.authenticate("ops", "wrong password!!") is None
    assert await store.authenticate("nobody", PASSWORD) is None
    async with db.read() as conn:
        stored = await conn.scalar(sa.select(users.c.password_hash))
    assert PASSWORD not in stored and check_password(PASSWORD, stored)


async def test_names_are_unique_and_refs_take_an_id_or_a_name(store: UserStore) -> None:
    user = await store.create("ops", PASSWORD)
    with pytest.raises(StoreConflict, match="already exists"):
        await store.create("ops", PASSWORD)
    assert await store.get(user.id) == await store.get("ops") == user
    with pytest.raises(StoreNotFound):
        await store.get("nobody")


async def test_a_new_password_replaces_the_old(store: UserStore, clock: Clock) -> None:
    await store.create("ops", PASSWORD)
    clock.advance(60)
    changed = await store.set_password("ops", "another long password")
    assert changed.updated_at > changed.created_at
    assert await store.authenticate("ops", PASSWORD) is None
    assert await store.authenticate("ops", "another long password") is not None
    with pytest.raises(StoreNotFound):
        await store.set_password("nobody", "another long password")


async def test_list_and_delete(store: UserStore) -> None:
    await store.create("zed", PASSWORD)
    await store.create("ann", PASSWORD)
    assert [u.name for u in await store.list()] == ["ann", "zed"]
    await store.delete("zed")
    assert [u.name for u in await store.list()] == ["ann"]
    assert await store.authenticate("zed", PASSWORD) is None
    with pytest.raises(StoreNotFound):
        await store.delete("zed")
