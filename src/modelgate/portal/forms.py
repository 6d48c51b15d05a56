"""HTML form fields to the admin service's arguments, with messages a person can act on.

A blank field is "no limit" (``None``); the service checks the values themselves (positive
limits, one budget per window), so the rules are the admin API's and the CLI's.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData

from modelgate.store import BUDGET_WINDOWS, Budget

_SPLIT = re.compile(r"[\s,]+")


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional_int(form: FormData, name: str) -> int | None:
    raw = text(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: a whole number, or blank for no limit (got {raw!r})") from None


def optional_float(form: FormData, name: str) -> float | None:
    raw = text(form, name).removeprefix("$")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: an amount such as 25 or 2.50, or blank for none (got {raw!r})") from None
    if value < 0:
        raise ValueError(f"{name}: an amount cannot be negative")
    return value


def budgets(form: FormData) -> list[Budget]:
    """``budget_<window>_usd`` and ``budget_<window>_credits``: a budget for each window with either."""
    out = []
    for window in BUDGET_WINDOWS:
        usd = optional_float(form, f"budget_{window}_usd")
        credits = optional_float(form, f"budget_{window}_credits")
        if usd is not None or credits is not None:
            out.append(Budget(window, usd=usd, credits=credits))
    return out


def names(form: FormData, name: str) -> list[str]:
    """A list typed with commas or spaces between its items."""
    return [item for item in _SPLIT.split(text(form, name)) if item]


def optional_time(form: FormData, name: str) -> datetime | None:
    """A ``datetime-local`` field (``2026-12-31T18:00``), read as UTC."""
    raw = text(form, name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name}: a date and time such as 2026-12-31T18:00 (UTC)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def limits(form: FormData) -> dict[str, Any]:
    """The limits a key and a team share."""
    return {
        "budgets": budgets(form),
        "rpm": optional_int(form, "rpm"),
        "tpm": optional_int(form, "tpm"),
        "concurrency": optional_int(form, "concurrency"),
    }


def key_fields(form: FormData) -> dict[str, Any]:
    """Every field of the key form, as :meth:`Admin.create_key` and :meth:`Admin.update_key` take them."""
    name = text(form, "name")
    if not name:
        raise ValueError("name: a key needs a name")
    return {
        "name": name,
        "team": text(form, "team") or None,
        **limits(form),
        "max_tokens": optional_int(form, "max_tokens"),
        "models": names(form, "models"),
        "expires_at": optional_time(form, "expires_at"),
    }


def team_fields(form: FormData) -> dict[str, Any]:
    name = text(form, "name")
    if not name:
        raise ValueError("name: a team needs a name")
    return {"name": name, **limits(form)}


def endpoint_fields(form: FormData) -> dict[str, Any]:
    """The endpoint form, as :meth:`EndpointAdmin.create` and :meth:`EndpointAdmin.update` take it:
    ``keys`` a multi-select of key ids (none: every key), ``log_bodies`` a checkbox."""
    name = text(form, "name")
    if not name:
        raise ValueError("name: an endpoint needs a name")
    keys = [value.strip() for value in form.getlist("keys") if isinstance(value, str) and value.strip()]
    return {
        "name": name,
        "description": text(form, "description"),
        "keys": keys,
        "models": names(form, "models"),
        "log_bodies": text(form, "log_bodies") in ("on", "true", "1"),
    }
