"""The web portal under ``/portal``: login, the guard in front of every page, and the page areas.

The gateway mounts :meth:`Portal.routes` after the model routes, so the portal costs the
model endpoints nothing. Every page is a handler ``(request, session)`` wrapped by
:meth:`Portal.guard`, which loads the session from its signed cookie, sends visitors to the
login form, refuses a key holder an operator's page (403), and checks the CSRF token of
every POST (403) before the handler runs. Writes go through :class:`~modelgate.admin.Admin`,
the service the admin API and the CLI use, followed by the same key cache refresh.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from modelgate.admin.endpoints import EndpointAdmin
from modelgate.admin.models import ProvidersReport
from modelgate.admin.service import Admin, key_status
from modelgate.policy.ips import client_ip
from modelgate.policy.keys import digest, is_virtual
from modelgate.portal.auth import COOKIE, CSRF_FIELD, SESSION_SECONDS, LoginThrottle, Role, Session, SessionCodec
from modelgate.portal.auth import session_secret as derive_secret
from modelgate.portal.endpoints import EndpointPages
from modelgate.portal.holder import HolderPage
from modelgate.portal.keys import KeyPages
from modelgate.portal.logs import LogsPage
from modelgate.portal.overview import OverviewPage
from modelgate.portal.providers import ProvidersPage
from modelgate.portal.sessions import SessionsPage
from modelgate.portal.web import HEADERS, PREFIX, FormTooLarge, NavItem, Templates, read_form, redirect
from modelgate.store import StoreNotFound, UserStore

Page = Callable[[Request, Session], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
#: The operator's top bar. The request log and sessions add their entries here.
NAV: Final = (
    NavItem("Overview", "/overview"),
    NavItem("Keys", "/keys"),
    NavItem("Teams", "/teams"),
    NavItem("Endpoints", "/endpoints"),
    NavItem("Providers", "/providers"),
    NavItem("Logs", "/logs"),
    NavItem("Sessions", "/sessions"),
)


class Portal:
    """The portal's routes over the admin service, the ledger and the router's upstream report."""

    def __init__(
        self,
        admin: Admin,
        master_key: str,
        *,
        after_write: Callable[[], Awaitable[None]] | None = None,
        upstreams: Callable[[], ProvidersReport] | None = None,
        endpoints: EndpointAdmin | None = None,
        users: UserStore | None = None,
        public_url: str | None = None,
        session_seconds: int = SESSION_SECONDS,
        throttle: LoginThrottle | None = None,
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        """``trusted_proxies`` (``tenancy.trusted_proxies``): whose ``X-Forwarded-For`` and
        ``X-Forwarded-Proto`` tell the client's address (for the login throttle) and scheme.
        ``endpoints`` serves the Endpoints pages (none: they answer 404); their base URLs start
        with ``public_url`` (``server.public_url``), else with the scheme and host the browser used.
        ``users``: the admin users who may log in with a name and a password besides the master key."""
        if not master_key:
            raise ValueError("the portal needs a master key: its sessions are signed with a secret derived from it")
        self.admin = admin
        self.codec = SessionCodec(derive_secret(master_key), session_seconds)
        self.throttle = throttle or LoginThrottle()
        self.templates = Templates(NAV)
        self._master = hashlib.sha256(master_key.encode()).digest()
        self._after_write = after_write
        self._trusted = trusted_proxies
        self._public_url = public_url
        self.users = users
        self.overview = OverviewPage(self.templates, admin)
        self.keys = KeyPages(self.templates, admin, self.written)
        self.endpoints = EndpointPages(self.templates, admin, endpoints, self.written, self.base_url)
        self.providers = ProvidersPage(self.templates, admin, upstreams)
        self.holder = HolderPage(self.templates, admin)
        self.logs = LogsPage(self.templates, admin)
        self.sessions = SessionsPage(self.templates, admin)

    async def written(self) -> None:
        """After a change: the same refresh the admin API runs, so it takes effect here at once."""
        if self._after_write is not None:
            await self._after_write()

    def routes(self) -> list[BaseRoute]:
        admin: Role = "admin"
        holder: Role = "holder"
        pages: list[BaseRoute] = [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.guard(self.logout, None), methods=["POST"]),
            Route("/overview", self.guard(self.overview.page, admin), methods=["GET"]),
            *(Route(path, self.guard(page, admin), methods=[m]) for path, m, page in self.keys.pages()),
            *(Route(path, self.guard(page, admin), methods=[m]) for path, m, page in self.endpoints.pages()),
            Route("/providers", self.guard(self.providers.page, admin), methods=["GET"]),
            Route("/me", self.guard(self.holder.page, holder), methods=["GET"]),
            Route("/logs", self.guard(self.logs.page, admin), methods=["GET"]),
            Route("/logs/{request_id}", self.guard(self.logs.trace, admin), methods=["GET"]),
            Route("/sessions", self.guard(self.sessions.page, admin), methods=["GET"]),
            Route("/sessions/{session_id:path}", self.guard(self.sessions.one, admin), methods=["GET"]),
            Mount("/static", app=StaticFiles(packages=[("modelgate.portal", "static")]), name="static"),
        ]
        router = Router(routes=pages, redirect_slashes=False, default=self.not_found)
        return [Route(PREFIX, self.home, methods=["GET"]), Mount(PREFIX, app=router)]

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A portal path that names no page: the portal's own 404 page, not a model API's error."""
        request = Request(scope, receive)
        session = await self.session(request)
        await self.refuse(request, session, f"There is no page at {request.url.path}.", 404)(scope, receive, send)

    # sessions

    async def session(self, request: Request) -> Session | None:
        """The request's session, if its cookie is genuine and unexpired; for a key holder, only
        while the key is neither revoked, expired nor rotated since the login; for an admin user,
        only while the user exists with the password of the login. Both are checked on every
        page with one read by primary key (the portal's pages make several reads anyway)."""
        session = self.codec.loads(request.cookies.get(COOKIE))
        if session is not None and session.user_id is not None:
            return await self._user_session(session)
        if session is None or session.role != "holder" or session.key_id is None:
            return session
        try:
            key = await self.admin.show_key(session.key_id)
        except StoreNotFound:
            return None
        if not hmac.compare_digest(self.codec.stamp(key.key_hash), session.stamp or ""):
            return None
        if key_status(key, self.admin.now()) in ("revoked", "expired"):
            return None
        return session

    async def _user_session(self, session: Session) -> Session | None:
        if self.users is None or session.user_id is None:
            return None
        try:
            user = await self.users.get(session.user_id)
        except StoreNotFound:
            return None
        if not hmac.compare_digest(self.codec.user_stamp(user.id, user.updated_at), session.stamp or ""):
            return None
        return session

    def guard(self, page: Page, role: Role | None) -> Endpoint:
        """``page`` for a logged-in session of ``role`` (None: any), with the CSRF check of a POST."""

        async def endpoint(request: Request) -> Response:
            session = await self.session(request)
            if session is None or session.role is None:
                if request.method == "GET":
                    return redirect("/login")
                return self.refuse(request, session, "Your session has ended: log in again.")
            if role is not None and session.role != role:
                return self.refuse(request, session, "This page is for the gateway's operators.")
            if request.method == "POST":
                try:
                    form = await read_form(request)
                except FormTooLarge as exc:
                    return self.refuse(request, session, str(exc), 413)
                token = form.get(CSRF_FIELD)
                if not session.csrf_ok(token if isinstance(token, str) else None):
                    return self.refuse(request, session, "The form's security token is missing or wrong: reload it.")
            return await page(request, session)

        return endpoint

    def refuse(self, request: Request, session: Session | None, message: str, status: int = 403) -> Response:
        return self.templates.render(request, "refused.html", session, status, message=message)

    def with_session(self, response: Response, request: Request, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            self.codec.dumps(session),
            max_age=self.codec.max_age,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=self._scheme(request) == "https",
        )
        return response

    def _scheme(self, request: Request) -> str:
        """The scheme the browser used: the proxy's ``X-Forwarded-Proto`` when the peer is trusted."""
        forwarded = request.headers.get("x-forwarded-proto")
        peer = request.client.host if request.client else None
        if forwarded and peer is not None and self._trusted:
            try:
                address = ipaddress.ip_address(peer)
            except ValueError:
                return request.url.scheme
            if any(address in ipaddress.ip_network(net, strict=False) for net in self._trusted):
                return forwarded.split(",")[0].strip().lower()
        return request.url.scheme

    def base_url(self, request: Request) -> str:
        """The gateway's base URL for its clients: ``server.public_url``, else what the browser used."""
        if self._public_url:
            return self._public_url.rstrip("/")
        return f"{self._scheme(request)}://{request.url.netloc}"

    # login and logout

    async def home(self, request: Request) -> Response:
        session = await self.session(request)
        if session is None or session.role is None:
            return redirect("/login")
        return redirect("/overview" if session.role == "admin" else "/me")

    async def login_form(self, request: Request) -> Response:
        session = await self.session(request)
        if session is not None and session.role is not None:
            return await self.home(request)
        visitor = session or Session.anonymous()
        return self.with_session(self.templates.render(request, "login.html", visitor), request, visitor)

    async def login(self, request: Request) -> Response:
        """The master key or an admin user's name and password open the operator's portal, a
        virtual key its holder's own page. Every failure gets the same answer and counts against
        the address: an unknown user, a wrong password and a wrong key look alike."""
        peer = request.client.host if request.client else None
        address = client_ip(peer, request.headers.get("x-forwarded-for"), self._trusted) or "unknown"
        visitor = self.codec.loads(request.cookies.get(COOKIE)) or Session.anonymous()
        wait = self.throttle.wait(address)
        if wait > 0:
            response = self.templates.render(
                request, "login.html", visitor, 429, error=f"Too many failed logins: try again in {wait:.0f} s."
            )
            response.headers["retry-after"] = str(int(wait) + 1)
            return response
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return self.refuse(request, None, str(exc), 413)
        token, given, name = form.get(CSRF_FIELD), form.get("key"), form.get("user")
        if not visitor.csrf_ok(token if isinstance(token, str) else None):
            return self.refuse(request, None, "The login form's security token is missing or wrong: reload the page.")
        secret = given.strip() if isinstance(given, str) else ""
        user = name.strip() if isinstance(name, str) else ""
        session = await (self.authenticate_user(user, secret) if user else self.authenticate(secret))
        if session is None:
            self.throttle.failed(address)
            error = "That user name and password are not valid here." if user else "That key is not valid here."
            return self.with_session(
                self.templates.render(request, "login.html", visitor, 401, error=error, user=user),
                request,
                visitor,
            )
        self.throttle.succeeded(address)
        return self.with_session(redirect("/overview" if session.role == "admin" else "/me"), request, session)

    async def authenticate(self, secret: str) -> Session | None:
        if not secret:
            return None
        if hmac.compare_digest(hashlib.sha256(secret.encode()).digest(), self._master):
            return Session.admin()
        if not is_virtual(secret):
            return None
        key = await self.admin.tenants.find_key_by_hash(digest(secret))
        if key is None or key_status(key, self.admin.now()) in ("revoked", "expired"):
            return None
        return Session.holder(key.id, self.codec.stamp(key.key_hash))

    async def authenticate_user(self, name: str, password: str) -> Session | None:
        """An admin user's session (scrypt in a thread: the event loop keeps serving)."""
        if self.users is None or not password:
            return None
        user = await self.users.authenticate(name, password)
        if user is None:
            return None
        return Session.admin(user.id, user.name, self.codec.user_stamp(user.id, user.updated_at))

    async def logout(self, request: Request, session: Session) -> Response:
        response = redirect("/login")
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="lax")
        return response


__all__ = ["HEADERS", "NAV", "Portal"]
