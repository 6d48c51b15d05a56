"""Virtual key secrets: how they are made, stored and shown.

A virtual key is ``sk-mg-`` followed by 43 URL-safe characters (256 bits from the OS's
random source). The gateway shows it once, when it is created or rotated, and keeps only
its SHA-256 digest (hex) and a short hint (``sk-mg-ab12``) for people to recognise it by.
A digest of a high-entropy secret needs no salt or slow hash: nobody can guess the secret
from it, and looking a presented key up by its digest costs one hash per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from fnmatch import fnmatchcase

PREFIX = "sk-mg-"
#: Characters of the secret after the prefix that the hint keeps (at most 8 in all with "…").
HINT_CHARS = 4


def new_secret() -> str:
    """A fresh virtual key."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hint(secret: str) -> str:
    """What lists and logs may show of a key: its prefix and first few characters."""
    return secret[: len(PREFIX) + HINT_CHARS]


def is_virtual(secret: str) -> bool:
    return secret.startswith(PREFIX)


def same_digest(a: str, b: str) -> bool:
    """Digest comparison in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


def allowed_model(model: str, patterns: tuple[str, ...]) -> bool:
    """Whether a key (or endpoint) whose models are ``patterns`` (names, ``*`` wildcards) may use ``model``."""
    return any(model == p or (("*" in p or "?" in p) and fnmatchcase(model, p)) for p in patterns)
