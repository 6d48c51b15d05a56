"""``modelgate users``: the portal's administrators besides the master key.

A password is read from the terminal (asked twice, never echoed) or, for scripts, from
stdin with ``--password-stdin``; never from an option, which would leave it in the shell's
history and in ``ps``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from modelgate.admin.commands import run_migrated, store_at, store_options
from modelgate.store import Database, UserRecord, UserStore
from modelgate.store.users import PASSWORD_MIN


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    prompt = f"Password (at least {PASSWORD_MIN} characters)"
    text: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return text


def _view(user: UserRecord) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "created_at": user.created_at.isoformat()}


@click.group("users")
def users_group() -> None:
    """Log-ins for the web portal (administrators), besides the master key."""


@users_group.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@store_options
def users_create(name: str, password_stdin: bool, **o: Any) -> None:
    """Add an administrator who logs in to the portal with NAME and a password."""
    password = _password(password_stdin)

    async def create(db: Database) -> UserRecord:
        return await UserStore(db).create(name, password)

    user = run_migrated(store_at(o), create)
    click.echo(f"user {user.name} ({user.id}) created")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@store_options
def users_list(as_json: bool, **o: Any) -> None:
    """The administrators (never their passwords)."""

    async def listed(db: Database) -> list[UserRecord]:
        return await UserStore(db).list()

    found = run_migrated(store_at(o), listed)
    if as_json:
        click.echo(json.dumps([_view(u) for u in found], indent=2))
    elif not found:
        click.echo("no users")
    else:
        for user in found:
            click.echo(f"{user.name}\t{user.id}\tcreated {user.created_at:%Y-%m-%d %H:%M} UTC")


@users_group.command("password")
@click.argument("ref")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@store_options
def users_password(ref: str, password_stdin: bool, **o: Any) -> None:
    """Set a new password for the user REF (name or id)."""
    password = _password(password_stdin)

    async def change(db: Database) -> UserRecord:
        return await UserStore(db).set_password(ref, password)

    user = run_migrated(store_at(o), change)
    click.echo(f"password of {user.name} changed")


@users_group.command("delete")
@click.argument("ref")
@store_options
def users_delete(ref: str, **o: Any) -> None:
    """Remove the user REF (name or id): they can no longer log in."""

    async def delete(db: Database) -> UserRecord:
        return await UserStore(db).delete(ref)

    user = run_migrated(store_at(o), delete)
    click.echo(f"user {user.name} deleted")
