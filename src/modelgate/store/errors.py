"""The store's own errors, apart from the gateway's HTTP-shaped hierarchy.

The store serves the admin API, the CLI and the key cache alike, so it says what
happened to the data (a name is taken, a row is missing) and lets each caller
choose its status or exit code.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's errors."""


class StoreNotFound(StoreError):
    """No row answers to the id or name given."""


class StoreConflict(StoreError):
    """A write would break a rule of the data: a name or key hash taken, a team still in use."""
