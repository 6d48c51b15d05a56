"""``modelgate db|keys|teams|usage``: administration on the store itself, with no server running.

Each command opens the configured store (``--database-url``, else the config's
``server.database_url`` / ``$MODELGATE_DATABASE_URL``, else the SQLite file in the
data directory), runs one :class:`Admin` operation and prints the result. An embedded
SQLite store is migrated on the way in, as ``serve`` does; a PostgreSQL store shared by
a fleet only by ``modelgate db upgrade``, so that no stray command upgrades it under
running instances.

A new secret goes alone to stdout, everything said about it to stderr: on a terminal the
key is the last line, and ``KEY=$(modelgate keys create --name x)`` captures just the key.
Exit codes: 0 done, 1 not found / conflict / store unusable, 2 usage errors.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from modelgate.admin import render, views
from modelgate.admin.models import KeyList, TeamList
from modelgate.admin.service import Admin, KeyUpdate
from modelgate.config import ConfigError, load_config
from modelgate.store import (
    BUDGET_WINDOWS,
    Budget,
    Database,
    LedgerStore,
    StoreConflict,
    StoreNotFound,
    TeamChanges,
    TenantStore,
    current_revision,
    default_url,
    head_revision,
    upgrade_database,
)

T = TypeVar("T")
_ORDER: Final = "modelgate.budget_order"
_BUDGET_OPTIONS: Final = {
    "--budget-usd": "usd",
    "--budget-credits": "credits",
    "--credits": "credits",
    "--window": "window",
}
_CLEARED: Final = {"max-tokens": "max_tokens", "ip-allow": "ip_allow", "ip-limit": "ip_limit", "expires": "expires_at"}
_GROUPS: Final = ("key", "team", "model", "endpoint", "served_model", "provider", "door", "endpoint_id")


@dataclass(frozen=True, slots=True)
class Store:
    url: str
    credit_rate: float | None
    #: Where clients reach the gateway, for endpoints' base URLs (``server.public_url``).
    public_url: str = "http://127.0.0.1:8080"

    @property
    def shown(self) -> str:
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return self.url


class StoreNotMigrated(Exception):
    """A shared store behind this code's schema: only ``db upgrade`` may change it."""


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def store_at(options: dict[str, Any]) -> Store:
    try:
        config = load_config(options["config_path"])
    except ConfigError as exc:
        _fail(f"invalid configuration\n{exc}", 2)
    server = config.server
    url = options["database_url"] or server.database_url or default_url(server.data_dir)
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
    return Store(url, config.tenancy.credit_rate, server.public_url or f"http://{host}:{server.port}")


def _on_store(store: Store, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the store; its errors become messages and exit codes."""

    async def run() -> T:
        async with Database(store.url) as db:
            return await work(db)

    try:
        return asyncio.run(run())
    except (StoreNotFound, StoreConflict, StoreNotMigrated) as exc:
        _fail(str(exc), 1)
    except ValueError as exc:
        _fail(str(exc), 2)
    except (SQLAlchemyError, OSError) as exc:
        _fail(f"cannot use the store at {store.shown}: {exc}", 1)


def _run(store: Store, work: Callable[[Admin], Awaitable[T]]) -> T:
    """Run one operation of :class:`Admin` on a store at the current schema."""
    return run_migrated(store, lambda db: work(Admin(TenantStore(db), LedgerStore(db), store.credit_rate)))


def run_migrated(store: Store, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on a store at the current schema (an embedded SQLite one is migrated first)."""

    async def migrated(db: Database) -> T:
        if db.dialect == "sqlite":
            await upgrade_database(db)
        elif (revision := await current_revision(db)) != head_revision():
            raise StoreNotMigrated(
                f"the store at {store.shown} is at schema revision {revision or 'none'}, "
                f"this modelgate needs {head_revision()}: run `modelgate db upgrade` first"
            )
        return await work(db)

    return _on_store(store, migrated)


# options


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--config`` and ``--database-url``: which store a command works on."""
    command = click.option(
        "--database-url", help="The store (default: $MODELGATE_DATABASE_URL, else SQLite in the data directory)."
    )(command)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")(command)


def when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An option's ISO 8601 date or time (a click callback); without a zone, UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time (2026-12-31, 2026-12-31T18:00Z)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class BudgetOrder(click.Command):
    """Remembers the order of the budget options, so that each ``--window`` takes the amounts before it.

    Click gathers repeated options into one list each, which loses how
    ``--budget-usd 5 --window 7d --budget-credits 100 --window month`` interleave.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        valued = {
            name
            for param in self.get_params(ctx)
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts
        }
        order, i = [], 0
        while i < len(args) and args[i] != "--":
            name, equals, _ = args[i].partition("=")
            if name in _BUDGET_OPTIONS:
                order.append(_BUDGET_OPTIONS[name])
            i += 2 if name in valued and not equals else 1
        ctx.meta[_ORDER] = order
        return super().parse_args(ctx, args)


def budget_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option("--budget-usd", multiple=True, type=click.FloatRange(min=0), help="A budget in USD."),
            click.option(
                "--budget-credits", "--credits", "budget_credits", multiple=True, type=click.FloatRange(min=0),
                help="A budget in credits.",
            ),
            click.option(
                "--window", multiple=True, type=click.Choice(BUDGET_WINDOWS),
                help="The window of the budget(s) just before it: 5h, 7d (rolling), month, total (default).",
            ),
            click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute."),
            click.option("--tpm", type=click.IntRange(min=1), help="Input + output tokens per minute."),
            click.option("--concurrency", type=click.IntRange(min=1), help="Requests in flight at once."),
            click.option("--metadata", multiple=True, metavar="KEY=VALUE", help="A label to keep with it."),
        )
    ):  # fmt: skip
        command = option(command)
    return command


def key_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option("--team", help="The team's name or id."),
            click.option("--max-tokens", type=click.IntRange(min=1), help="The largest max_tokens a request may ask."),
            click.option("--models", multiple=True, help="Allowed models: names and patterns, comma-separated."),
            click.option("--expires", callback=when, help="Expiry: an ISO 8601 date or time (UTC unless given)."),
            click.option("--ip-allow", multiple=True, metavar="CIDR", help="Allowed client IPs (comma-separated)."),
            click.option("--ip-limit", type=click.IntRange(min=1), help="Most distinct client IPs per --ip-window."),
            click.option("--ip-window", metavar="DURATION", help="The IP limit's window, such as 1h or 24h (24h)."),
            click.option(
                "--intercept-warmup/--no-intercept-warmup",
                default=None,
                help="Claude Code's Warmup calls answered by the gateway (the default) or sent upstream.",
            ),
            click.option(
                "--log-bodies/--no-log-bodies",
                default=None,
                help="Keep this key's request and answer bodies in the request log (off by default).",
            ),
        )
    ):
        command = option(command)
    return command


def budgets_given(ctx: click.Context, options: dict[str, Any]) -> list[Budget] | None:
    """The budgets in the order given: amounts, each group closed by its ``--window`` (else lifetime)."""
    usd, credits, windows = iter(options["budget_usd"]), iter(options["budget_credits"]), iter(options["window"])
    order: list[str] = ctx.meta.get(_ORDER, [])
    if not order:
        return None
    budgets: list[Budget] = []
    pending: dict[str, float] = {}
    for kind in order:
        if kind == "window":
            window = next(windows)
            if not pending:
                raise click.UsageError(f"--window {window} must follow the --budget-usd or --budget-credits it sets")
            budgets.append(Budget(window, **pending))
            pending = {}
            continue
        if kind in pending:  # a second amount of one kind starts the next budget
            budgets.append(Budget("total", **pending))
            pending = {}
        pending[kind] = next(usd if kind == "usd" else credits)
    if pending:
        budgets.append(Budget("total", **pending))
    return budgets


def _split(values: Sequence[str]) -> list[str]:
    """Repeated options whose values may each be comma-separated, as one list."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _metadata(values: Sequence[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--metadata")
        pairs[key] = text
    return pairs


def _changes(ctx: click.Context, options: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """What an update command was told to set or clear, by field name; a usage error if nothing."""
    changes: dict[str, Any] = {}
    budgets = budgets_given(ctx, options)
    if budgets is not None:
        changes["budgets"] = budgets
    for field in fields:
        value = options.get(field)
        if field in ("models", "ip_allow"):
            if value:
                changes[field] = _split(value)
        elif field == "metadata":
            if value:
                changes[field] = _metadata(value)
        elif field == "expires":
            if value is not None:
                changes["expires_at"] = value
        elif value is not None:
            changes[field] = value
    for field in options["clear"]:
        name = _CLEARED.get(field, field)
        if name in changes:
            raise click.UsageError(f"--clear {field} and a new value for it: give one of them")
        changes[name] = [] if name in ("budgets", "models", "ip_allow") else {} if name == "metadata" else None
        if name == "ip_limit":
            changes["ip_window"] = None
    if not changes:
        raise click.UsageError("nothing to change: give a new value or --clear FIELD")
    return changes


# db


@click.group("db")
def db_group() -> None:
    """The store of keys, teams and the ledger."""


@db_group.command("upgrade")
@store_options
def db_upgrade(**options: Any) -> None:
    """Bring the store's schema to this version's (safe to run again, and from several hosts at once)."""
    store = store_at(options)

    async def upgrade(db: Database) -> tuple[str | None, str | None]:
        before = await current_revision(db)
        await upgrade_database(db)
        return before, await current_revision(db)

    before, after = _on_store(store, upgrade)
    state = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    click.echo(f"store {store.shown}: {state} schema revision {after}")


# keys


@click.group("keys")
def keys_group() -> None:
    """Virtual keys (sk-mg-…): create, list, show, update, revoke, rotate, release."""


@keys_group.command("create", cls=BudgetOrder)
@click.option("--name", required=True, help="A unique name for the key.")
@key_options
@budget_options
@store_options
@click.pass_context
def keys_create(ctx: click.Context, /, **o: Any) -> None:
    """Create a key; it is printed alone on the last line, and never again.

    Budgets pair with windows in order, e.g. --budget-usd 5 --window 7d --budget-usd 20 --window month.
    """
    budgets = budgets_given(ctx, o) or ()

    async def create(admin: Admin) -> tuple[list[tuple[str, str]], str]:
        key, secret = await admin.create_key(
            o["name"],
            team=o["team"],
            budgets=budgets,
            rpm=o["rpm"],
            tpm=o["tpm"],
            concurrency=o["concurrency"],
            max_tokens=o["max_tokens"],
            models=_split(o["models"]),
            expires_at=o["expires"],
            ip_allow=_split(o["ip_allow"]),
            ip_limit=o["ip_limit"],
            ip_window=o["ip_window"],
            intercept_warmup=o["intercept_warmup"] is not False,
            log_bodies=o["log_bodies"] is True,
            metadata=_metadata(o["metadata"]),
        )
        team = None if key.team_id is None else (await admin.team_names()).get(key.team_id)
        return render.key_details(key, team, admin.now()), secret

    details, secret = _run(store_at(o), create)
    click.echo(render.details(details), err=True)
    click.echo("The key follows. It is shown only this once: store it now.", err=True)
    click.echo(secret)


@keys_group.command("list")
@click.option("--team", help="Only this team's keys (name or id).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@store_options
def keys_list(**o: Any) -> None:
    """List keys (never the keys themselves: only their hints)."""

    async def listing(admin: Admin) -> str:
        keys, names, now = await admin.list_keys(team=o["team"]), await admin.team_names(), admin.now()
        if o["as_json"]:
            return KeyList(data=[views.key_view(k, names, now) for k in keys]).model_dump_json(indent=2)
        return render.key_table(keys, names, now) if keys else "no keys"

    click.echo(_run(store_at(o), listing))


@keys_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@store_options
def keys_show(ref: str, **o: Any) -> None:
    """Show a key (by name or id) and how much of each budget window it has used."""

    async def show(admin: Admin) -> str:
        key, names, now = await admin.show_key(ref), await admin.team_names(), admin.now()
        if o["as_json"]:
            return views.key_view(key, names, now).model_dump_json(indent=2)
        details = render.details(render.key_details(key, names.get(key.team_id or ""), now))
        return f"{details}\n\n{render.windows_table(await admin.windows(key.id))}"

    click.echo(_run(store_at(o), show))


_KEY_CLEARABLE: Final = (
    "team", "budgets", "rpm", "tpm", "concurrency", "max-tokens", "models", "expires", "ip-allow", "ip-limit",
    "metadata",
)  # fmt: skip


@keys_group.command("update", cls=BudgetOrder)
@click.argument("ref")
@click.option("--name", help="A new name.")
@key_options
@budget_options
@click.option("--clear", multiple=True, type=click.Choice(_KEY_CLEARABLE), help="Remove a limit, the team, …")
@store_options
@click.pass_context
def keys_update(ctx: click.Context, /, ref: str, **o: Any) -> None:
    """Change a key's name, team, budgets or limits; what is not given stays (budgets given replace them all)."""
    fields = ("name", "team", "rpm", "tpm", "concurrency", "max_tokens", "models", "expires", "ip_allow")
    changes = _changes(ctx, o, (*fields, "ip_limit", "ip_window", "intercept_warmup", "log_bodies", "metadata"))

    async def update(admin: Admin) -> str:
        key = await admin.update_key(ref, **_as_key_update(changes))
        names = await admin.team_names()
        return render.details(render.key_details(key, names.get(key.team_id or ""), admin.now()))

    click.echo(_run(store_at(o), update))


def _as_key_update(changes: dict[str, Any]) -> KeyUpdate:
    update: KeyUpdate = {}
    update.update(changes)  # type: ignore[typeddict-item]  # names made by _changes from KeyUpdate's own
    return update


@keys_group.command("revoke")
@click.argument("ref")
@store_options
def keys_revoke(ref: str, **o: Any) -> None:
    """Revoke a key for good (every gateway instance refuses it within the key refresh delay)."""
    key = _run(store_at(o), lambda admin: admin.revoke_key(ref))
    click.echo(f"key {key.name} ({key.id}) revoked at {render.when(key.revoked_at)}")


@keys_group.command("rotate")
@click.argument("ref")
@store_options
def keys_rotate(ref: str, **o: Any) -> None:
    """A new secret for a key, same name, team and limits; the old one stops working. Printed alone on the last line."""
    key, secret = _run(store_at(o), lambda admin: admin.rotate_key(ref))
    click.echo(f"key {key.name} ({key.id}) rotated: the old secret no longer works.", err=True)
    click.echo("The new key follows. It is shown only this once: store it now.", err=True)
    click.echo(secret)


@keys_group.command("release")
@click.argument("ref")
@store_options
def keys_release(ref: str, **o: Any) -> None:
    """Lift the quarantine the gateway put on a key."""
    key = _run(store_at(o), lambda admin: admin.release_key(ref))
    click.echo(f"key {key.name} ({key.id}) is not quarantined")


# teams


@click.group("teams")
def teams_group() -> None:
    """Teams: budgets and limits shared by their keys."""


@teams_group.command("create", cls=BudgetOrder)
@click.option("--name", required=True, help="A unique name for the team.")
@budget_options
@store_options
@click.pass_context
def teams_create(ctx: click.Context, /, **o: Any) -> None:
    """Create a team. Budgets pair with windows in order, as for keys."""
    budgets = budgets_given(ctx, o) or ()

    async def create(admin: Admin) -> str:
        team = await admin.create_team(
            o["name"],
            budgets=budgets,
            rpm=o["rpm"],
            tpm=o["tpm"],
            concurrency=o["concurrency"],
            metadata=_metadata(o["metadata"]),
        )
        return render.details(render.team_details(team, 0))

    click.echo(_run(store_at(o), create))


@teams_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@store_options
def teams_list(**o: Any) -> None:
    """List teams and how many keys each has."""

    async def listing(admin: Admin) -> str:
        teams = await admin.list_teams()
        if o["as_json"]:
            return TeamList(data=[views.team_view(t) for t in teams]).model_dump_json(indent=2)
        return render.team_table(teams, await _members(admin)) if teams else "no teams"

    click.echo(_run(store_at(o), listing))


async def _members(admin: Admin) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in await admin.list_keys():
        if key.team_id is not None:
            counts[key.team_id] = counts.get(key.team_id, 0) + 1
    return counts


@teams_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@store_options
def teams_show(ref: str, **o: Any) -> None:
    """Show a team (by name or id)."""

    async def show(admin: Admin) -> str:
        team = await admin.show_team(ref)
        if o["as_json"]:
            return views.team_view(team).model_dump_json(indent=2)
        return render.details(render.team_details(team, (await _members(admin)).get(team.id, 0)))

    click.echo(_run(store_at(o), show))


@teams_group.command("update", cls=BudgetOrder)
@click.argument("ref")
@click.option("--name", help="A new name.")
@budget_options
@click.option("--clear", multiple=True, type=click.Choice(("budgets", "rpm", "tpm", "concurrency", "metadata")))
@store_options
@click.pass_context
def teams_update(ctx: click.Context, /, ref: str, **o: Any) -> None:
    """Change a team's name, budgets or limits; what is not given stays (budgets given replace them all)."""
    changes = _changes(ctx, o, ("name", "rpm", "tpm", "concurrency", "metadata"))

    async def update(admin: Admin) -> str:
        team = await admin.update_team(ref, **_as_team_changes(changes))
        return render.details(render.team_details(team, (await _members(admin)).get(team.id, 0)))

    click.echo(_run(store_at(o), update))


def _as_team_changes(changes: dict[str, Any]) -> TeamChanges:
    update: TeamChanges = {}
    update.update(changes)  # type: ignore[typeddict-item]  # names made by _changes from TeamChanges' own
    return update


@teams_group.command("delete")
@click.argument("ref")
@store_options
def teams_delete(ref: str, **o: Any) -> None:
    """Delete a team that no key belongs to."""
    team = _run(store_at(o), lambda admin: admin.delete_team(ref))
    click.echo(f"team {team.name} ({team.id}) deleted")


# usage


@click.command("usage")
@click.option("--key", help="Only this key (name or id).")
@click.option("--team", help="Only this team (name or id).")
@click.option("--since", callback=when, help="From this ISO 8601 date or time on (UTC unless given).")
@click.option("--by", "group_by", type=click.Choice(_GROUPS), default="key", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@store_options
def usage_command(**o: Any) -> None:
    """Requests, tokens and cost from the ledger, grouped by key, team, model or endpoint."""

    async def report(admin: Admin) -> str:
        groups = await admin.usage(key=o["key"], team=o["team"], since=o["since"], group_by=o["group_by"])
        if o["as_json"]:
            view = views.usage_report(groups, group_by=o["group_by"], since=o["since"], key=o["key"], team=o["team"])
            return view.model_dump_json(indent=2)
        if not groups:
            return "no usage recorded" + (f" since {render.when(o['since'])}" if o["since"] else "")
        credits = admin.credit_rate is not None or any(g.credits for g in groups)
        return render.usage_table(groups, o["group_by"], credits=credits)

    click.echo(_run(store_at(o), report))


COMMANDS: Final = (db_group, keys_group, teams_group, usage_command)
