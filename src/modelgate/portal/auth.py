"""Who is looking at the portal: sessions in signed cookies, CSRF tokens, and a login throttle.

A session is a small signed value in a cookie (itsdangerous, the signer under Starlette's own
``SessionMiddleware``), never a key nor a password: the master key's says ``admin``; an admin
user's says ``admin`` and names the user, with a tag of the user's id and last change, so
deleting the user or changing the password ends it; a key holder's names the key's id and
carries a tag of the key's digest, so rotating or revoking the key ends it. The signing
secret is derived from the master key, so every worker and every instance of a fleet accepts
the same cookies without sharing a file, and changing the master key logs everyone out.

Every POST carries the session's CSRF token in a hidden field, compared in constant time;
the login form too, with the token of a session that is not logged in yet. Failed logins are
counted per client address and refused for a while past a limit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE: Final = "mg_portal"
CSRF_FIELD: Final = "csrf"
#: How long a session lasts after login.
SESSION_SECONDS: Final = 12 * 3600
_SALT: Final = "modelgate.portal.session"

Role = Literal["admin", "holder"]


@dataclass(frozen=True, slots=True)
class Session:
    """A portal session; ``role`` None is a visitor who has only the login form's CSRF token."""

    csrf: str
    role: Role | None = None
    key_id: str | None = None
    #: A key holder's: a tag of the key's stored digest (a rotation changes it). An admin user's:
    #: a tag of the user's id and last change (a new password changes it).
    stamp: str | None = None
    #: An admin user's id and name (None: the master key's session).
    user_id: str | None = None
    user: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(24))

    @classmethod
    def admin(cls, user_id: str | None = None, user: str | None = None, stamp: str | None = None) -> Session:
        """The master key's session, or with ``user_id``, an admin user's."""
        return cls(csrf=secrets.token_urlsafe(24), role="admin", user_id=user_id, user=user, stamp=stamp)

    @classmethod
    def holder(cls, key_id: str, stamp: str) -> Session:
        return cls(csrf=secrets.token_urlsafe(24), role="holder", key_id=key_id, stamp=stamp)

    def csrf_ok(self, given: str | None) -> bool:
        """The form's token is this session's (constant time)."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def session_secret(master_key: str) -> bytes:
    """The cookie signing secret: the master key's HMAC of a fixed label (never the key itself)."""
    return hmac.new(master_key.encode(), b"modelgate portal sessions v1", hashlib.sha256).digest()


class SessionCodec:
    """Sessions to and from signed, timestamped cookie values."""

    def __init__(self, secret: bytes, max_age: int = SESSION_SECONDS) -> None:
        self.max_age = max_age
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps({k: v for k, v in asdict(session).items() if v is not None})

    def loads(self, value: str | None) -> Session | None:
        """The session in a cookie; None when there is none, or it was altered, or it expired."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        role = data.get("role")
        if role not in (None, "admin", "holder"):
            return None
        key_id, stamp = data.get("key_id"), data.get("stamp")
        user_id, user = data.get("user_id"), data.get("user")
        if role == "holder" and not (isinstance(key_id, str) and isinstance(stamp, str)):
            return None
        if user_id is not None and not (
            role == "admin" and isinstance(user_id, str) and isinstance(user, str) and isinstance(stamp, str)
        ):
            return None
        return Session(csrf=data["csrf"], role=role, key_id=key_id, stamp=stamp, user_id=user_id, user=user)

    def stamp(self, key_hash: str) -> str:
        """The tag of a key's digest that a holder's session carries."""
        return hmac.new(self._secret, key_hash.encode(), hashlib.sha256).hexdigest()[:24]

    def user_stamp(self, user_id: str, updated_at: datetime) -> str:
        """The tag of a user's id and last change that an admin user's session carries."""
        return self.stamp(f"user:{user_id}:{updated_at.astimezone(UTC).isoformat()}")


class LoginThrottle:
    """Failed logins per client address: past ``limit`` within ``window`` seconds, refused until
    the oldest failure ages out. Bounded: the least recently failing addresses are forgotten."""

    def __init__(
        self,
        limit: int = 10,
        window: float = 300.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, address: str) -> float:
        """Seconds before ``address`` may try again (0: now)."""
        failures = self._recent(address)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window - self._clock())

    def failed(self, address: str) -> None:
        failures = self._recent(address)
        if failures is None:
            failures = self._failures[address] = deque(maxlen=self.limit)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        failures.append(self._clock())

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures
