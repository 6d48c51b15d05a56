"""The portal's rendering: Jinja2 templates from the package, filters for people, safe headers.

Templates are read from the installed package (``PackageLoader``), autoescaped and compiled
once per process; no asset is built at run time. Every page is sent with headers that keep
it out of caches and frames and allow only the portal's own CSS and JS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelgate.portal.auth import CSRF_FIELD, Session

PREFIX: Final = "/portal"
#: The largest form the portal reads (its forms are a few hundred bytes).
MAX_FORM_BYTES: Final = 64 * 1024
HEADERS: Final[Mapping[str, str]] = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


@dataclass(frozen=True, slots=True)
class NavItem:
    """An entry of the top bar; later page areas (logs, sessions, endpoints) add theirs."""

    name: str
    path: str


def usd(value: float | None) -> str:
    """``$12.34``; small amounts keep their significant digits (``$0.0042``)."""
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    if abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def count(value: float | None) -> str:
    """``950``, ``12.3k``, ``4.5M``."""
    if value is None:
        return "—"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def ms(value: float | None) -> str:
    """``840 ms``, ``2.4 s``."""
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def percent(value: float | None) -> str:
    """A share (0 to 1) as ``3.2%``."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}%" if value < 0.1 else f"{value * 100:.0f}%"


def when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float | None) -> str:
    """``3h 12m``, ``45s``, ``2d 4h``."""
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s" if minutes < 10 and secs else f"{minutes}m"
    return f"{secs}s"


class Templates:
    """The package's templates, with the portal's filters and the frame every page needs."""

    def __init__(self, nav: tuple[NavItem, ...]) -> None:
        self.nav = nav
        self.env = Environment(
            loader=PackageLoader("modelgate.portal", "templates"),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(usd=usd, count=count, ms=ms, percent=percent, when=when, duration=duration)
        self.env.globals.update(prefix=PREFIX, csrf_field=CSRF_FIELD)

    def render(
        self, request: Request, name: str, session: Session | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """A page, with the session (for the nav and the forms' CSRF token) and the current path."""
        page = self.env.get_template(name).render(
            session=session,
            nav=self.nav if session is not None and session.role == "admin" else (),
            path=request.url.path,
            notice=context.pop("notice", None),
            error=context.pop("error", None),
            **context,
        )
        return HTMLResponse(page, status_code, headers=dict(HEADERS))


def redirect(path: str, **query: str) -> Response:
    """A 303 to a portal path after a POST (Post/Redirect/Get), with an optional notice code."""
    target = PREFIX + path
    if query:
        target += "?" + urlencode(query)
    return RedirectResponse(target, status_code=303, headers=dict(HEADERS))


class FormTooLarge(ValueError):
    """A form body above ``MAX_FORM_BYTES``."""


async def read_form(request: Request) -> FormData:
    """The request's URL-encoded form, read once and kept on the request.

    The portal's forms are all ``application/x-www-form-urlencoded`` (no uploads), so they are
    parsed here rather than with Starlette's parser, which needs python-multipart.
    """
    cached = request.scope.get("modelgate.portal.form")
    if isinstance(cached, FormData):
        return cached
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge(f"the form is larger than {MAX_FORM_BYTES} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    pairs: list[tuple[str, str | UploadFile]] = []
    if kind == _URLENCODED:
        pairs.extend(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    form = request.scope["modelgate.portal.form"] = FormData(pairs)
    return form


_URLENCODED: Final = "application/x-www-form-urlencoded"
