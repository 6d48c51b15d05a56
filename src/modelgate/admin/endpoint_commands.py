"""``modelgate endpoints``: per-application endpoints on the store itself, with no server running.

The same operations as ``/admin/endpoints`` (``admin/endpoints.py``), on the store the
other commands use (``admin/commands.py``). The base URLs shown start with ``--base-url``,
else the config's ``server.public_url``, else ``http://<host>:<port>`` of the config; a
server running elsewhere learns of a change within ``tenancy.key_refresh_seconds``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar, cast

import click

from modelgate.admin import render, views
from modelgate.admin.commands import _metadata, _split, run_migrated, store_at, store_options
from modelgate.admin.endpoints import CLIENTS, EndpointAdmin, EndpointUpdate, base_urls, endpoint_status
from modelgate.admin.models import EndpointList
from modelgate.store import Database, EndpointRecord, EndpointStore, TenantStore

T = TypeVar("T")
_CLEARABLE: Final = ("description", "keys", "models", "metadata")


def _run(options: dict[str, Any], work: Callable[[EndpointAdmin, str], Awaitable[T]]) -> T:
    """Run ``work`` with the endpoints of the store the options name and the base URL to show."""
    store = store_at(options)
    base = options.get("base_url") or store.public_url

    async def with_endpoints(db: Database) -> T:
        return await work(EndpointAdmin(EndpointStore(db), TenantStore(db)), base)

    return run_migrated(store, with_endpoints)


def base_url_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--base-url", help="Where clients reach the gateway (default: server.public_url, else http://host:port)."
    )(command)


def endpoint_details(endpoint: EndpointRecord, key_names: Mapping[str, str], base: str) -> list[tuple[str, str]]:
    keys = ", ".join(key_names.get(key_id, f"{key_id} (deleted)") for key_id in endpoint.keys) or "every key"
    details = [
        ("name", endpoint.name),
        ("id", endpoint.id),
        ("status", endpoint_status(endpoint)),
        ("keys", keys),
        ("models", ", ".join(endpoint.models) or "every model"),
        ("log bodies", "yes" if endpoint.log_bodies else "no"),
    ]
    if endpoint.description:
        details.insert(1, ("description", endpoint.description))
    if endpoint.metadata:
        details.append(("metadata", ", ".join(f"{k}={v}" for k, v in endpoint.metadata.items())))
    details += [(f"{client} URL", url) for client, url in base_urls(base, endpoint.id).items()]
    return [*details, ("created", render.when(endpoint.created_at)), ("updated", render.when(endpoint.updated_at))]


def endpoint_table(endpoints: Sequence[EndpointRecord], base: str) -> str:
    rows = [
        [e.name, e.id, endpoint_status(e), str(len(e.keys) or "all"), ", ".join(e.models) or "all"] for e in endpoints
    ]
    table = render.table(["NAME", "ID", "STATUS", "KEYS", "MODELS"], rows)
    return f"{table}\n\nbase URLs: {base.rstrip('/')}/v1/<id>/{{{','.join(CLIENTS)}}}"


@click.group("endpoints")
def endpoints_group() -> None:
    """Per-application endpoints (base URLs /v1/<id>/anthropic|openai|gemini): create, list, show, update, delete."""


def endpoint_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option("--description", help="What the application is."),
            click.option("--keys", multiple=True, help="Keys it accepts (names or ids, comma-separated); none: all."),
            click.option("--models", multiple=True, help="Models it allows: names and patterns, comma-separated."),
            click.option(
                "--log-bodies/--no-log-bodies", default=None, help="Keep its requests' bodies in the request log."
            ),
            click.option("--metadata", multiple=True, metavar="KEY=VALUE", help="A label to keep with it."),
        )
    ):
        command = option(command)
    return command


@endpoints_group.command("create")
@click.option("--name", required=True, help="A unique name for the endpoint.")
@endpoint_options
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@base_url_option
@store_options
def endpoints_create(**o: Any) -> None:
    """Create an endpoint and print the base URL to give each client."""

    async def create(admin: EndpointAdmin, base: str) -> str:
        endpoint = await admin.create(
            o["name"],
            description=o["description"] or "",
            keys=_split(o["keys"]),
            models=_split(o["models"]),
            log_bodies=bool(o["log_bodies"]),
            metadata=_metadata(o["metadata"]),
        )
        return _shown(endpoint, await admin.key_names(), base, o["as_json"])

    click.echo(_run(o, create))


@endpoints_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@base_url_option
@store_options
def endpoints_list(**o: Any) -> None:
    """List endpoints."""

    async def listing(admin: EndpointAdmin, base: str) -> str:
        endpoints = await admin.list_all()
        if o["as_json"]:
            names = await admin.key_names()
            return EndpointList(data=[views.endpoint_view(e, names, base) for e in endpoints]).model_dump_json(indent=2)
        return endpoint_table(endpoints, base) if endpoints else "no endpoints"

    click.echo(_run(o, listing))


@endpoints_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@base_url_option
@store_options
def endpoints_show(ref: str, **o: Any) -> None:
    """Show an endpoint (by name or id) and its base URLs."""

    async def show(admin: EndpointAdmin, base: str) -> str:
        return _shown(await admin.show(ref), await admin.key_names(), base, o["as_json"])

    click.echo(_run(o, show))


@endpoints_group.command("update")
@click.argument("ref")
@click.option("--name", help="A new name.")
@endpoint_options
@click.option("--disable", "disabled", flag_value=True, default=None, help="Refuse its requests (404), keep it.")
@click.option("--enable", "disabled", flag_value=False, help="Serve its requests again.")
@click.option("--clear", multiple=True, type=click.Choice(_CLEARABLE), help="Empty a field (keys, models: all).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@base_url_option
@store_options
def endpoints_update(ref: str, **o: Any) -> None:
    """Change an endpoint's name, keys, models or opt-ins; disable or enable it."""
    changes: dict[str, Any] = {field: o[field] for field in ("name", "description", "log_bodies", "disabled")}
    changes = {field: value for field, value in changes.items() if value is not None}
    changes |= {field: _split(o[field]) for field in ("keys", "models") if o[field]}
    if o["metadata"]:
        changes["metadata"] = _metadata(o["metadata"])
    for field in o["clear"]:
        if field in changes:
            raise click.UsageError(f"--clear {field} and a new value for it: give one of them")
        changes[field] = "" if field == "description" else {} if field == "metadata" else []
    if not changes:
        raise click.UsageError("nothing to change: give a new value, --disable, --enable or --clear FIELD")

    async def update(admin: EndpointAdmin, base: str) -> str:
        endpoint = await admin.update(ref, **cast(EndpointUpdate, changes))  # the option names are the fields'
        return _shown(endpoint, await admin.key_names(), base, o["as_json"])

    click.echo(_run(o, update))


@endpoints_group.command("delete")
@click.argument("ref")
@store_options
def endpoints_delete(ref: str, **o: Any) -> None:
    """Delete an endpoint for good: its clients get 404 (its ledger rows keep its id)."""

    async def delete(admin: EndpointAdmin, base: str) -> str:
        endpoint = await admin.delete(ref)
        return f"deleted endpoint {endpoint.name} ({endpoint.id})"

    click.echo(_run(o, delete))


def _shown(endpoint: EndpointRecord, key_names: Mapping[str, str], base: str, as_json: bool) -> str:
    if as_json:
        return views.endpoint_view(endpoint, key_names, base).model_dump_json(indent=2)
    return render.details(endpoint_details(endpoint, key_names, base))
