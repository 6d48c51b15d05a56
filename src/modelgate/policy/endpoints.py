"""Per-application endpoints on the request path: which one a request came through, and
whether it may.

:class:`EndpointCache` holds every endpoint in memory by id, so the request path makes no
query. Endpoints are few (one per application) and may be deleted, so each refresh reads
the whole table again and replaces the map, which also drops a deleted one (a key cache
that polls for changes since a time could not see a deletion). It loads at start, polls
every ``refresh_seconds``, and the admin API refreshes it right after its own writes.

:func:`admit_endpoint` and :func:`check_model` are admission's rules: an unknown or
disabled endpoint is not found (404 in the door's envelope); a virtual key the endpoint
does not list, or a model it does not allow, is forbidden (403, ``policy`` codes
``endpoint_key_not_allowed`` and ``model_not_allowed``). The master key passes an
endpoint's key list: it is the operator's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from modelgate.errors import NotFound, PermissionDenied
from modelgate.periodic import Periodic
from modelgate.policy.auth import Principal
from modelgate.policy.keys import allowed_model
from modelgate.store import EndpointRecord, EndpointStore

log = logging.getLogger("modelgate.tenancy")


class EndpointCache:
    def __init__(self, store: EndpointStore, refresh_seconds: float) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._by_id: Mapping[str, EndpointRecord] = {}
        self._poll = Periodic(self.load, refresh_seconds, what="refresh the endpoint cache", log=log)

    def find(self, endpoint_id: str) -> EndpointRecord | None:
        return self._by_id.get(endpoint_id)

    def put(self, endpoint: EndpointRecord) -> None:
        self._by_id = {**self._by_id, endpoint.id: endpoint}

    async def load(self) -> None:
        """Every endpoint, replacing what the cache held (so deletions leave it too)."""
        self._by_id = {endpoint.id: endpoint for endpoint in await self.store.list_all()}

    refresh = load

    def start(self) -> None:
        self._poll.start()

    async def close(self) -> None:
        await self._poll.close()


def admit_endpoint(endpoint: EndpointRecord | None, endpoint_id: str, caller: Principal | None) -> EndpointRecord:
    """``endpoint`` (the cache's answer for ``endpoint_id``) if it exists, is enabled and takes the caller's key."""
    if endpoint is None or endpoint.disabled_at is not None:
        raise NotFound(f"no endpoint {endpoint_id!r}: check the base URL", code="endpoint_not_found")
    key = caller.key if caller is not None else None
    if key is not None and endpoint.keys and key.id not in endpoint.keys:
        raise PermissionDenied(
            f"API key {key.name!r} may not use endpoint {endpoint.name!r}", code="endpoint_key_not_allowed", policy=True
        )
    return endpoint


def check_model(endpoint: EndpointRecord, model: str) -> None:
    """Refuse a model the endpoint does not allow, as a key's model list refuses it."""
    if endpoint.models and not allowed_model(model, endpoint.models):
        raise PermissionDenied(
            f"endpoint {endpoint.name!r} may not use model {model!r}", code="model_not_allowed", policy=True
        )
