"""Teams and virtual keys: the rows the admin API and CLI edit and the key cache reads.

Keys are never deleted, only revoked: instances refresh their key cache from
:meth:`TenantStore.keys_changed_since`, which can report a change but not an
absence, so a deleted key would stay valid in every other instance's cache.
For the same reason every write stamps ``updated_at``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Unpack

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.errors import StoreConflict, StoreError, StoreNotFound
from modelgate.store.records import Budget, KeyChanges, KeyRecord, TeamChanges, TeamRecord, require_aware
from modelgate.store.repository import Repository, Row, resolve
from modelgate.store.schema import HINT_MAX, NAME_MAX, keys, teams

_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_TEAM_FIELDS: Final = frozenset(TeamChanges.__annotations__)
_KEY_FIELDS: Final = frozenset(KeyChanges.__annotations__)
_WHEN_FIELDS: Final = frozenset({"expires_at", "revoked_at", "quarantined_at"})
_NAME_LISTS: Final = frozenset({"models", "ip_allow"})


class TenantStore(Repository):
    """Create, read and update teams and keys; ``ref`` arguments take an id or a name.

    ``clock`` stamps ``created_at`` / ``updated_at`` (tests pass their own).
    """

    # teams

    async def create_team(
        self,
        name: str,
        *,
        budgets: Sequence[Budget] = (),
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TeamRecord:
        now = self._now()
        values = {"id": f"team_{secrets.token_hex(12)}", "created_at": now, "updated_at": now}
        values |= _team_values(
            {"name": name, "budgets": budgets, "rpm": rpm, "tpm": tpm, "concurrency": concurrency},
        )
        values["metadata"] = dict(metadata or {})
        try:
            async with self._db.write() as conn:
                await conn.execute(sa.insert(teams).values(values))
        except IntegrityError as exc:
            raise StoreConflict(f"a team named {name!r} already exists") from exc
        return _team_record(values)

    async def get_team(self, ref: str) -> TeamRecord:
        async with self._db.read() as conn:
            return _team_record(await resolve(conn, teams, "team", ref))

    async def list_teams(self) -> list[TeamRecord]:
        async with self._db.read() as conn:
            result = await conn.execute(sa.select(teams).order_by(teams.c.name))
            return [_team_record(row) for row in result.mappings()]

    async def update_team(self, ref: str, **changes: Unpack[TeamChanges]) -> TeamRecord:
        values = _team_values(changes)
        try:
            async with self._db.write() as conn:
                row = await resolve(conn, teams, "team", ref)
                if values:
                    values["updated_at"] = self._now()
                    await conn.execute(sa.update(teams).where(teams.c.id == row["id"]).values(values))
        except IntegrityError as exc:
            raise StoreConflict(f"a team named {changes.get('name')!r} already exists") from exc
        return _team_record({**row, **values})

    async def delete_team(self, ref: str) -> None:
        """Delete a team no key belongs to; a key's team must be changed or cleared first."""
        try:
            async with self._db.write() as conn:
                row = await resolve(conn, teams, "team", ref)
                members = await conn.scalar(
                    sa.select(sa.func.count()).select_from(keys).where(keys.c.team_id == row["id"])
                )
                if members:
                    raise StoreConflict(
                        f"team {row['name']!r} still has {members} key(s), revoked ones included: "
                        "move them to another team or clear their team first"
                    )
                await conn.execute(sa.delete(teams).where(teams.c.id == row["id"]))
        except IntegrityError as exc:  # a key joined the team meanwhile
            raise StoreConflict(f"team {ref!r} still has keys") from exc

    async def teams_changed_since(self, since: datetime) -> list[TeamRecord]:
        """Teams written at or after ``since``, oldest first (inclusive, so no write of that instant is missed)."""
        require_aware(since, "since")
        query = sa.select(teams).where(teams.c.updated_at >= since).order_by(teams.c.updated_at, teams.c.id)
        async with self._db.read() as conn:
            return [_team_record(row) for row in (await conn.execute(query)).mappings()]

    # keys

    async def create_key(
        self,
        name: str,
        *,
        key_hash: str,
        hint: str,
        team_id: str | None = None,
        models: Sequence[str] = (),
        expires_at: datetime | None = None,
        budgets: Sequence[Budget] = (),
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        max_tokens: int | None = None,
        ip_allow: Sequence[str] = (),
        ip_limit: int | None = None,
        ip_window: str | None = None,
        intercept_warmup: bool = True,
        log_bodies: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> KeyRecord:
        """Store a new key by the sha256 hex digest of its secret; the secret itself never comes here."""
        now = self._now()
        values: dict[str, Any] = {"id": f"key_{secrets.token_hex(12)}", "created_at": now, "updated_at": now}
        values |= _key_values(
            {
                "name": name,
                "key_hash": key_hash,
                "hint": hint,
                "team_id": team_id,
                "models": models,
                "expires_at": expires_at,
                "budgets": budgets,
                "rpm": rpm,
                "tpm": tpm,
                "concurrency": concurrency,
                "max_tokens": max_tokens,
                "ip_allow": ip_allow,
                "ip_limit": ip_limit,
                "ip_window": ip_window,
                "intercept_warmup": intercept_warmup,
                "log_bodies": log_bodies,
                "metadata": metadata or {},
            }
        )
        values |= {"revoked_at": None, "quarantined_at": None, "quarantine_reason": None}
        try:
            async with self._db.write() as conn:
                await _require_team(conn, team_id)
                await conn.execute(sa.insert(keys).values(values))
        except IntegrityError as exc:
            raise _key_conflict(exc, name) from exc
        return _key_record(values)

    async def get_key(self, ref: str) -> KeyRecord:
        async with self._db.read() as conn:
            return _key_record(await resolve(conn, keys, "key", ref))

    async def find_key_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key whose secret hashes to ``key_hash``; None for an unknown key, an everyday answer here."""
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(keys).where(keys.c.key_hash == key_hash))).mappings().first()
        return None if row is None else _key_record(row)

    async def list_keys(self, *, team_id: str | None = None) -> list[KeyRecord]:
        """Every key (a full cache load), or a team's, sorted by name."""
        query = sa.select(keys).order_by(keys.c.name)
        if team_id is not None:
            query = query.where(keys.c.team_id == team_id)
        async with self._db.read() as conn:
            return [_key_record(row) for row in (await conn.execute(query)).mappings()]

    async def update_key(self, ref: str, **changes: Unpack[KeyChanges]) -> KeyRecord:
        """Set the fields given: revoke (``revoked_at``), quarantine, rotate (``key_hash`` with ``hint``)…"""
        values = _key_values(changes)
        try:
            async with self._db.write() as conn:
                row = await resolve(conn, keys, "key", ref)
                if values:
                    if "team_id" in values:
                        await _require_team(conn, values["team_id"])
                    values["updated_at"] = self._now()
                    await conn.execute(sa.update(keys).where(keys.c.id == row["id"]).values(values))
        except IntegrityError as exc:
            raise _key_conflict(exc, changes.get("name", ref)) from exc
        return _key_record({**row, **values})

    async def keys_changed_since(self, since: datetime) -> list[KeyRecord]:
        """Keys written at or after ``since``, oldest first: the key cache's periodic refresh.

        Inclusive, so a poller that passes the newest ``updated_at`` it has seen
        misses nothing written in that same instant (it reads those rows twice).
        Clocks of different writers may disagree: pollers should look back a
        little further than their last poll.
        """
        require_aware(since, "since")
        query = sa.select(keys).where(keys.c.updated_at >= since).order_by(keys.c.updated_at, keys.c.id)
        async with self._db.read() as conn:
            return [_key_record(row) for row in (await conn.execute(query)).mappings()]


async def _require_team(conn: AsyncConnection, team_id: str | None) -> None:
    if team_id is not None and await conn.scalar(sa.select(teams.c.id).where(teams.c.id == team_id)) is None:
        raise StoreNotFound(f"no team with id {team_id!r}")


def _key_conflict(exc: IntegrityError, name: str) -> StoreError:
    text = str(exc.orig).lower()
    if "key_hash" in text:
        return StoreConflict("another key already has this key hash")
    if "foreign key" in text:
        return StoreNotFound("the key's team was deleted meanwhile")
    return StoreConflict(f"a key named {name!r} already exists")


def _team_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - _TEAM_FIELDS
    if unknown:
        raise TypeError(f"unknown team field(s): {', '.join(sorted(unknown))}")
    values = dict(fields)
    if "name" in values:
        values["name"] = _name(values["name"])
    if "budgets" in values:
        values["budgets"] = _budgets_json(values["budgets"])
    if "metadata" in values:
        values["metadata"] = dict(values["metadata"])
    return values


def _key_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - _KEY_FIELDS
    if unknown:
        raise TypeError(f"unknown key field(s): {', '.join(sorted(unknown))}")
    if ("key_hash" in fields) != ("hint" in fields):
        raise ValueError("key_hash and hint change together (a rotation)")
    values = _team_values({k: v for k, v in fields.items() if k in _TEAM_FIELDS})
    values |= {k: v for k, v in fields.items() if k not in _TEAM_FIELDS}
    if "key_hash" in values and not _SHA256_HEX.fullmatch(values["key_hash"]):
        raise ValueError("key_hash must be the lowercase sha256 hex digest of the secret, never the secret")
    if "hint" in values and not 0 < len(values["hint"]) <= HINT_MAX:
        raise ValueError(f"a hint has 1 to {HINT_MAX} characters")
    for flag in ("intercept_warmup", "log_bodies"):
        if flag in values and not isinstance(values[flag], bool):
            raise TypeError(f"{flag} is true or false")
    if values.get("ip_window") is not None and len(values["ip_window"]) > 16:
        raise ValueError(f"ip_window is a short duration such as 1h or 24h, got {values['ip_window']!r}")
    for field in _NAME_LISTS & values.keys():
        if isinstance(values[field], str):
            raise TypeError(f"{field} takes a sequence of strings, not one string")
        values[field] = [str(item) for item in values[field]]
    for field in _WHEN_FIELDS & values.keys():
        if values[field] is not None:
            values[field] = require_aware(values[field], field).astimezone(UTC)
    return values


def _name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
        raise ValueError(f"a name must be a non-empty string of at most {NAME_MAX} characters")
    return name


def _budgets_json(budgets: Sequence[Budget]) -> list[dict[str, Any]]:
    return [budget.to_json() for budget in budgets]


def _budgets(data: Sequence[Mapping[str, Any]]) -> tuple[Budget, ...]:
    return tuple(Budget.from_json(item) for item in data)


def _team_record(row: Row) -> TeamRecord:
    return TeamRecord(
        id=row["id"],
        name=row["name"],
        budgets=_budgets(row["budgets"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        concurrency=row["concurrency"],
        metadata=dict(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _key_record(row: Row) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        key_hash=row["key_hash"],
        hint=row["hint"],
        team_id=row["team_id"],
        models=tuple(row["models"]),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        quarantined_at=row["quarantined_at"],
        quarantine_reason=row["quarantine_reason"],
        budgets=_budgets(row["budgets"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        concurrency=row["concurrency"],
        max_tokens=row["max_tokens"],
        ip_allow=tuple(row["ip_allow"]),
        ip_limit=row["ip_limit"],
        ip_window=row["ip_window"],
        metadata=dict(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        intercept_warmup=bool(row["intercept_warmup"]),
        log_bodies=bool(row["log_bodies"]),
    )
