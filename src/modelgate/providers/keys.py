"""Upstream API keys: a provider's pool, and the key chosen for one attempt.

The key is picked by the chain when an attempt starts and handed to the provider with the
request, so that a retry can go out with another key. Only the key's ``id`` is ever
recorded or logged.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class UpstreamKey:
    #: Stable and printable: ``{provider}#{index in the config}``.
    id: str
    secret: str = field(repr=False)


class KeyPool:
    """A provider's keys, handed out in turn."""

    def __init__(self, provider: str, secrets: Sequence[str]) -> None:
        self.keys = [UpstreamKey(f"{provider}#{i}", s) for i, s in enumerate(secrets)]
        self._turn: Iterator[UpstreamKey] | None = itertools.cycle(self.keys) if self.keys else None

    def pick(self) -> UpstreamKey | None:
        """The next key, or None for a provider that needs none (a local server)."""
        return next(self._turn) if self._turn is not None else None
