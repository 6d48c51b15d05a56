"""The portal's administrators: a name and a password, kept as a salted scrypt hash.

The master key always logs in as an administrator; users let a team of operators use the
portal without sharing it. A password is never stored nor returned: only
``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (stdlib ``hashlib.scrypt``, memory-hard), checked in
constant time. Hashing costs tens of milliseconds on purpose, so it runs in a thread, off
the event loop that serves model requests; an unknown name costs the same as a wrong
password, so a login's timing does not tell which names exist.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from modelgate.store.database import Database
from modelgate.store.errors import StoreConflict
from modelgate.store.repository import Repository, resolve, utcnow
from modelgate.store.schema import NAME_MAX, users

#: scrypt's cost: 2**14 × 8 × 128 bytes = 16 MiB of memory per hash (OWASP's minimum for scrypt).
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
PASSWORD_MIN: Final = 12
PASSWORD_MAX: Final = 1024


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    created_at: datetime
    updated_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password``, in the ``scrypt$n$r$p$salt$hash`` form."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValueError(f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (compared in constant time); False for a hash
    this code cannot read."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or len(password) > PASSWORD_MAX:
            return False
        expected = _unb64(digest)
        given = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(given, expected)


class UserStore(Repository):
    """Create, list, check and delete users; ``ref`` arguments take an id or a name."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(db, clock=clock)
        #: What an unknown name is checked against, so that it takes as long as a wrong password.
        self._decoy: str | None = None

    async def create(self, name: str, password: str) -> UserRecord:
        if not name.strip() or len(name) > NAME_MAX:
            raise ValueError(f"a user name is a non-empty string of at most {NAME_MAX} characters")
        hashed = await asyncio.to_thread(hash_password, password)
        now = self._now()
        values = {
            "id": "user_" + secrets.token_hex(8),
            "name": name,
            "password_hash": hashed,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._db.write() as conn:
                await conn.execute(sa.insert(users).values(values))
        except IntegrityError:
            raise StoreConflict(f"a user named {name!r} already exists") from None
        return _record(values)

    async def list(self) -> list[UserRecord]:
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(users).order_by(users.c.name))).mappings().all()
        return [_record(row) for row in rows]

    async def get(self, ref: str) -> UserRecord:
        async with self._db.read() as conn:
            return _record(await resolve(conn, users, "user", ref))

    async def set_password(self, ref: str, password: str) -> UserRecord:
        hashed = await asyncio.to_thread(hash_password, password)
        async with self._db.write() as conn:
            row = await resolve(conn, users, "user", ref)
            values = {"password_hash": hashed, "updated_at": self._now()}
            await conn.execute(sa.update(users).where(users.c.id == row["id"]).values(values))
        return _record({**row, **values})

    async def delete(self, ref: str) -> UserRecord:
        user = await self.get(ref)
        async with self._db.write() as conn:
            await conn.execute(sa.delete(users).where(users.c.id == user.id))
        return user

    async def authenticate(self, name: str, password: str) -> UserRecord | None:
        """The user ``name`` when ``password`` is theirs, else None (in about the same time)."""
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.name == name))).mappings().first()
        if row is None:
            if self._decoy is None:
                self._decoy = await asyncio.to_thread(hash_password, secrets.token_urlsafe(PASSWORD_MIN))
            await asyncio.to_thread(check_password, password, self._decoy)
            return None
        ok = await asyncio.to_thread(check_password, password, row["password_hash"])
        return _record(row) if ok else None


def _record(row: Mapping[Any, Any]) -> UserRecord:
    return UserRecord(id=row["id"], name=row["name"], created_at=row["created_at"], updated_at=row["updated_at"])
