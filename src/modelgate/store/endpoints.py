"""Per-application endpoints: the rows behind the base URLs ``/v1/<id>/<provider>``.

An endpoint's id is in its clients' base URLs, so it is short, lowercase and URL-safe
(``ep_`` and 12 characters of ``[a-z0-9]``) and never changes; its name is for people.
Unlike keys, endpoints may be deleted: the endpoint cache reloads the whole (small) table
on each refresh, so a deleted endpoint leaves every instance's cache too.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any, Final, Unpack

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from modelgate.store.errors import StoreConflict
from modelgate.store.records import EndpointChanges, EndpointRecord, require_aware
from modelgate.store.repository import Repository, resolve
from modelgate.store.schema import NAME_MAX, endpoints

ID_PREFIX: Final = "ep_"
_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
_ID_LENGTH: Final = 12  # 36**12 ≈ 4.7e18: no collision in practice, still short in a URL
_FIELDS: Final = frozenset(EndpointChanges.__annotations__)

Row = Mapping[Any, Any]


def new_endpoint_id() -> str:
    return ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


class EndpointStore(Repository):
    """Create, read, update and delete endpoints; ``ref`` arguments take an id or a name.

    ``clock`` stamps ``created_at`` / ``updated_at`` (tests pass their own).
    """

    async def create(
        self,
        name: str,
        *,
        description: str = "",
        keys: Sequence[str] = (),
        models: Sequence[str] = (),
        log_bodies: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> EndpointRecord:
        now = self._now()
        values: dict[str, Any] = {"id": new_endpoint_id(), "created_at": now, "updated_at": now, "disabled_at": None}
        values |= _values(
            {
                "name": name,
                "description": description,
                "keys": keys,
                "models": models,
                "log_bodies": log_bodies,
                "metadata": metadata or {},
            }
        )
        try:
            async with self._db.write() as conn:
                await conn.execute(sa.insert(endpoints).values(values))
        except IntegrityError as exc:
            raise StoreConflict(f"an endpoint named {name!r} already exists") from exc
        return _record(values)

    async def get(self, ref: str) -> EndpointRecord:
        async with self._db.read() as conn:
            return _record(await resolve(conn, endpoints, "endpoint", ref))

    async def list_all(self) -> list[EndpointRecord]:
        """Every endpoint, by name (a full cache load)."""
        async with self._db.read() as conn:
            result = await conn.execute(sa.select(endpoints).order_by(endpoints.c.name))
            return [_record(row) for row in result.mappings()]

    async def update(self, ref: str, **changes: Unpack[EndpointChanges]) -> EndpointRecord:
        values = _values(changes)
        try:
            async with self._db.write() as conn:
                row = await resolve(conn, endpoints, "endpoint", ref)
                if values:
                    values["updated_at"] = self._now()
                    await conn.execute(sa.update(endpoints).where(endpoints.c.id == row["id"]).values(values))
        except IntegrityError as exc:
            raise StoreConflict(f"an endpoint named {changes.get('name')!r} already exists") from exc
        return _record({**row, **values})

    async def disable(self, ref: str) -> EndpointRecord:
        """Refuse every request through the endpoint (404), keeping it (a no-op when disabled)."""
        current = await self.get(ref)
        if current.disabled_at is not None:
            return current
        return await self.update(current.id, disabled_at=self._now())

    async def enable(self, ref: str) -> EndpointRecord:
        current = await self.get(ref)
        if current.disabled_at is None:
            return current
        return await self.update(current.id, disabled_at=None)

    async def delete(self, ref: str) -> EndpointRecord:
        """Delete an endpoint; returns what was deleted. Its ledger rows keep its id."""
        async with self._db.write() as conn:
            row = await resolve(conn, endpoints, "endpoint", ref)
            await conn.execute(sa.delete(endpoints).where(endpoints.c.id == row["id"]))
        return _record(row)


def _values(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - _FIELDS
    if unknown:
        raise TypeError(f"unknown endpoint field(s): {', '.join(sorted(unknown))}")
    values = dict(fields)
    if "name" in values:
        name = values["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
            raise ValueError(f"a name must be a non-empty string of at most {NAME_MAX} characters")
    if "description" in values and not isinstance(values["description"], str):
        raise TypeError("description is a string")
    for field in ("keys", "models"):
        if field in values:
            if isinstance(values[field], str):
                raise TypeError(f"{field} takes a sequence of strings, not one string")
            values[field] = [str(item) for item in values[field]]
    if "log_bodies" in values and not isinstance(values["log_bodies"], bool):
        raise TypeError("log_bodies is true or false")
    if "metadata" in values:
        values["metadata"] = dict(values["metadata"])
    if values.get("disabled_at") is not None:
        values["disabled_at"] = require_aware(values["disabled_at"], "disabled_at").astimezone(UTC)
    return values


def _record(row: Row) -> EndpointRecord:
    return EndpointRecord(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        keys=tuple(row["keys"]),
        models=tuple(row["models"]),
        log_bodies=bool(row["log_bodies"]),
        disabled_at=row["disabled_at"],
        metadata=dict(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
