"""The operations an operator runs on per-application endpoints, for the admin API and the CLI.

An endpoint's keys are given by name or id and stored by id (a key renamed later stays
accepted); its models are names and patterns, as a key's. Its base URLs are made here
from the gateway's public base URL, so the API and the CLI show the same three:
``<base>/v1/<id>/anthropic``, ``<base>/v1/<id>/openai``, ``<base>/v1/<id>/gemini``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypedDict, Unpack

from modelgate.admin.service import _names
from modelgate.store import EndpointChanges, EndpointRecord, EndpointStore, TenantStore

#: The provider segments of an endpoint's base URLs, in the order they are shown.
CLIENTS: Final = ("anthropic", "openai", "gemini")

EndpointStatus = Literal["active", "disabled"]


class EndpointUpdate(TypedDict, total=False):
    """What an operator may change on an endpoint; ``disabled`` turns it off (True) or on (False)."""

    name: str
    description: str
    keys: Sequence[str]
    models: Sequence[str]
    log_bodies: bool
    disabled: bool
    metadata: Mapping[str, Any]


def base_urls(base: str, endpoint_id: str) -> dict[str, str]:
    """The base URL each client is given for an endpoint, under the gateway's ``base``."""
    root = base.rstrip("/")
    return {client: f"{root}/v1/{endpoint_id}/{client}" for client in CLIENTS}


def endpoint_status(endpoint: EndpointRecord) -> EndpointStatus:
    return "active" if endpoint.disabled_at is None else "disabled"


class EndpointAdmin:
    """Endpoints over the store; refs are ids or names, for endpoints and the keys they list."""

    def __init__(self, endpoints: EndpointStore, tenants: TenantStore) -> None:
        self.endpoints = endpoints
        self.tenants = tenants

    async def create(
        self,
        name: str,
        description: str = "",
        keys: Sequence[str] = (),
        models: Sequence[str] = (),
        log_bodies: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> EndpointRecord:
        return await self.endpoints.create(
            name,
            description=description,
            keys=await self._key_ids(keys),
            models=_names("models", models),
            log_bodies=log_bodies,
            metadata=metadata,
        )

    async def list_all(self) -> list[EndpointRecord]:
        return await self.endpoints.list_all()

    async def show(self, ref: str) -> EndpointRecord:
        return await self.endpoints.get(ref)

    async def update(self, ref: str, **changes: Unpack[EndpointUpdate]) -> EndpointRecord:
        unknown = changes.keys() - EndpointUpdate.__annotations__.keys()
        if unknown:
            raise ValueError(f"an endpoint has no changeable field(s) {', '.join(sorted(unknown))}")
        store: EndpointChanges = {}
        if "name" in changes:
            store["name"] = changes["name"]
        if "description" in changes:
            store["description"] = changes["description"]
        if "log_bodies" in changes:
            store["log_bodies"] = changes["log_bodies"]
        if "metadata" in changes:
            store["metadata"] = changes["metadata"]
        if "keys" in changes:
            store["keys"] = await self._key_ids(changes["keys"])
        if "models" in changes:
            store["models"] = _names("models", changes["models"])
        endpoint = await self.endpoints.update(ref, **store)
        if "disabled" in changes:
            switch = self.endpoints.disable if changes["disabled"] else self.endpoints.enable
            endpoint = await switch(endpoint.id)
        return endpoint

    async def delete(self, ref: str) -> EndpointRecord:
        """Delete an endpoint for good (its clients get 404; its ledger rows keep its id)."""
        return await self.endpoints.delete(ref)

    async def key_names(self) -> dict[str, str]:
        """Key id → name, for views that show an endpoint's keys by name."""
        return {key.id: key.name for key in await self.tenants.list_keys()}

    async def _key_ids(self, refs: Sequence[str]) -> list[str]:
        """The ids of the keys named (StoreNotFound for one that does not exist)."""
        return [(await self.tenants.get_key(ref)).id for ref in _names("keys", refs)]
