"""The application object and the ASGI app built from it.

:class:`Gateway` owns everything with state — the config, the upstream HTTP
pool, the providers, the catalog, the authenticator — so nothing mutable lives
at module level. ``create_app`` is the factory the server (and each worker
process) calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelgate.admin import Admin, AdminAPI
from modelgate.admin.endpoints import EndpointAdmin
from modelgate.admin.models import ProvidersReport
from modelgate.config import Config, load_config
from modelgate.errors import InternalError, http_error
from modelgate.frontdoors.anthropic import AnthropicFrontDoor
from modelgate.frontdoors.base import FrontDoor
from modelgate.frontdoors.gemini import GeminiFrontDoor
from modelgate.frontdoors.listings import ModelListings
from modelgate.frontdoors.openai_chat import OpenAIChatFrontDoor
from modelgate.frontdoors.openai_responses import OpenAIResponsesFrontDoor
from modelgate.frontdoors.usage import UsageEndpoint
from modelgate.observability.metrics import Metrics
from modelgate.observability.request_log import RequestLog
from modelgate.pipeline.admit import Admission
from modelgate.pipeline.chain import Chain
from modelgate.pipeline.context import new_request_id
from modelgate.pipeline.settle import Settler
from modelgate.policy.auth import Authenticator
from modelgate.policy.tenancy import Tenancy
from modelgate.portal import Portal
from modelgate.protocols import WireProtocol
from modelgate.providers import HttpClient, Provider, build_provider
from modelgate.routing.catalog import ModelCatalog
from modelgate.routing.router import Router
from modelgate.routing.shared import open_routing_state
from modelgate.store import UserStore

if TYPE_CHECKING:
    from modelgate.observability.tracing import Tracing

CONFIG_ENV = "MODELGATE_CONFIG"
#: The protocol of a path no route matched, for an error in the envelope its client expects.
_PATH_PROTOCOLS = (
    (("/v1beta/", "/api/gemini/"), WireProtocol.GEMINI),
    (("/v1/responses", "/responses", "/api/openai/v1/responses"), WireProtocol.OPENAI_RESPONSES),
    (("/v1/chat/", "/chat/", "/api/openai/"), WireProtocol.OPENAI_CHAT),
)
#: A per-application endpoint's base URLs: ``/v1/<endpoint_id>/<provider>``.
ENDPOINT_PREFIX = "/v1/{endpoint_id}"
#: The protocol of each provider segment of an endpoint's base URL (``/openai/…`` is
#: chat completions' envelope unless the path is the Responses API's).
_ENDPOINT_PROTOCOLS = {
    "anthropic": WireProtocol.ANTHROPIC,
    "openai": WireProtocol.OPENAI_CHAT,
    "gemini": WireProtocol.GEMINI,
}
log = logging.getLogger("modelgate")


def ensure_master_key(config: Config) -> str:
    """The configured master key, or one generated once and kept in the data directory."""
    if config.master_key:
        return config.master_key
    data_dir = Path(config.server.data_dir)
    path = data_dir / "master_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "mg-master-" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _refused_handshake(record: logging.LogRecord) -> bool:
    """Drop uvicorn's error line for a WebSocket handshake the app refused on purpose (Codex's
    upgrade on ``GET /v1/responses`` gets a 426): the refusal is correct, not an error."""
    return "without completing handshake" not in record.getMessage()


class Gateway:
    """The application object: owns the config, the upstream HTTP pool, the providers, the
    catalog, the authenticator and the request chain, and wires the front doors to them."""

    def __init__(self, config: Config, authenticator: Authenticator | None = None) -> None:
        self.config = config
        self.client = HttpClient(idle_ping=config.server.stream_ping_interval)
        self.providers: dict[str, Provider] = {
            p.name: build_provider(p, self.client, config.models) for p in config.providers
        }
        self.router = Router(config.router)
        for provider in self.providers.values():
            provider.keys.cooldown = config.router.key_cooldown
            provider.keys.quarantine = config.router.key_quarantine
        router = config.router
        self.catalog = ModelCatalog(
            list(config.models), self.providers, router.health, router.auto, router.thinking_variants
        )
        #: Key rests and breakers: the process's own, or shared by the fleet through Redis.
        self.routing_state = open_routing_state(config.server.redis_url)
        self.routing_state.attach((p.keys for p in self.providers.values()), self.catalog.health())
        #: Keys, teams, limits, budgets and the ledger (the store opens at start).
        self.tenancy = Tenancy(config, ensure_master_key(config))
        self.authenticator = authenticator or self.tenancy.authenticator
        self.admission = Admission(self.authenticator, config.server.max_body_bytes, self.tenancy)
        self.admission.byok = {f"x-modelgate-key-{p.name.lower()}": p.name for p in config.providers if p.byok}
        #: Prometheus collectors (``GET /metrics``); model labels bounded by the config's names.
        writer = self.tenancy.writer
        self.metrics = Metrics((m.name for m in config.models), lambda: writer.pending)
        for provider in self.providers.values():
            provider.keys.listeners.append(self.metrics)
        for health in self.catalog.health():
            health.listeners.append(self.metrics)
        self.settler = Settler(RequestLog(config.server.request_log_level), self.tenancy, self.metrics)
        #: OpenTelemetry spans (``tracing.enabled``; the optional ``otel`` extra, imported only then).
        self.tracing: Tracing | None = None
        if config.tracing.enabled:
            from modelgate.observability.tracing import Tracing

            self.tracing = self.settler.tracing = Tracing(config)
            self.admission.trace_context = True
        self.chain = Chain(self.admission, self.catalog, self.settler, self.router)
        self.anthropic = AnthropicFrontDoor(self.chain)
        self.openai_chat = OpenAIChatFrontDoor(self.chain)
        self.openai_responses = OpenAIResponsesFrontDoor(self.chain, self.admission)
        self.gemini = GeminiFrontDoor(self.chain)
        #: Front doors by wire protocol, for whatever must answer in a caller's own envelope.
        self.doors: dict[WireProtocol, FrontDoor] = {
            door.protocol: door for door in (self.anthropic, self.openai_chat, self.openai_responses, self.gemini)
        }
        self.listings = ModelListings(self.catalog, self.admission, self.doors)
        self.usage = UsageEndpoint(self.admission, self.tenancy, self.doors)
        admin = Admin(
            self.tenancy.tenants, self.tenancy.ledger, config.tenancy.credit_rate, requests=self.tenancy.requests
        )
        self.master_key = ensure_master_key(config)
        endpoints = EndpointAdmin(self.tenancy.endpoint_store, self.tenancy.tenants)
        self.admin = AdminAPI(
            admin,
            self.master_key,
            after_write=self.tenancy.refresh,
            upstreams=self.upstreams,
            endpoints=endpoints,
            public_url=config.server.public_url,
        )
        #: The web portal (``/portal``): the same service, the same refresh after a change.
        self.portal = Portal(
            admin,
            self.master_key,
            after_write=self.tenancy.refresh,
            upstreams=self.upstreams,
            endpoints=endpoints,
            users=UserStore(self.tenancy.database),
            public_url=config.server.public_url,
            trusted_proxies=self.tenancy.trusted_proxies,
        )

    async def start(self) -> None:
        await self.client.start()
        await self.tenancy.start()
        await self.routing_state.start()

    async def close(self) -> None:
        await self.routing_state.close()
        await self.tenancy.close()
        await self.client.close()
        self.metrics.close()
        if self.tracing is not None:  # the last spans made and exported, off the event loop
            await asyncio.to_thread(self.tracing.close)

    def routes(self) -> list[BaseRoute]:
        # The model endpoints first: routes are matched in order, on every request.
        return [
            *self.anthropic.routes(),
            *self.openai_chat.routes(),
            *self.openai_responses.routes(),
            *self.gemini.routes(),
            *self.anthropic.routes("/api/anthropic"),
            *self.gemini.routes("/api/gemini"),
            *self.listings.routes(),
            *self.usage.routes(),
            *self.admin.routes(),
            Route("/", self.root, methods=["GET", "HEAD"]),
            Route("/api/hello", self.root, methods=["GET", "HEAD"]),
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
            *([Route("/metrics", self.scrape, methods=["GET"])] if self.config.server.metrics else []),
            *self.portal.routes(),
            *self.forgiving_routes(),
            *self.endpoint_routes(),
        ]

    def endpoint_routes(self, prefix: str = ENDPOINT_PREFIX) -> list[BaseRoute]:
        """The model endpoints and listings under each per-application endpoint's base URLs,
        ``/v1/<id>/anthropic``, ``/v1/<id>/openai`` (with or without ``/v1``) and
        ``/v1/<id>/gemini``; the id travels as a path parameter to admission. Last: the plain
        paths never pass by them."""
        openai = (prefix + "/openai", prefix + "/openai/v1")
        return [
            *self.anthropic.routes(prefix + "/anthropic"),
            *self.openai_chat.routes(openai),
            *self.openai_responses.routes(openai),
            *self.gemini.routes(prefix + "/gemini"),
            *self.listings.endpoint_routes(prefix),
        ]

    def forgiving_routes(self) -> list[BaseRoute]:
        """``/v1/v1/…``: the model endpoints for clients whose base URL was written with ``/v1``
        by an SDK that adds ``/v1`` itself (last: the right paths never pass by them)."""
        return [
            *self.anthropic.routes("/v1"),
            Route("/v1/v1/chat/completions", self.openai_chat.completions, methods=["POST"]),
            Route("/v1/v1/responses", self.openai_responses.create, methods=["POST"]),
            Route("/v1/v1/responses/compact", self.openai_responses.compact, methods=["POST"]),
        ]

    def asgi(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            server_log = logging.getLogger("uvicorn.error")
            server_log.addFilter(_refused_handshake)
            await self.start()
            try:
                yield
            finally:
                await self.close()
                server_log.removeFilter(_refused_handshake)

        return Starlette(
            routes=self.routes(),
            lifespan=lifespan,
            exception_handlers={HTTPException: self.http_error, Exception: self.crash},
        )

    async def root(self, request: Request) -> Response:
        return Response(b'{"name":"modelgate","status":"ok"}', media_type="application/json")

    async def healthz(self, request: Request) -> Response:
        """Up, and what the router has set aside: deployments not closed, upstream keys at rest
        (by id; never a key)."""
        body: dict[str, Any] = {
            "status": "ok",
            "providers": sorted(self.providers),
            "models": len(self.catalog.listed()),
        }
        deployments = [h.state() for h in self.catalog.health() if h.failures or h.open_until]
        keys = [k for p in self.providers.values() for k in p.keys.state() if k["state"] != "ok"]
        if deployments or keys:
            body["details"] = {"deployments": deployments, "keys": keys}
        if self.routing_state.shared:
            body["routing_state"] = self.routing_state.describe()
        return Response(orjson.dumps(body), media_type="application/json")

    async def scrape(self, request: Request) -> Response:
        """Prometheus metrics in the text format; behind the master key when the config asks."""
        if self.config.server.metrics_auth:
            given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
            if not secrets.compare_digest(given.encode(), self.master_key.encode()):
                return Response(b"unauthorized\n", status_code=401, media_type="text/plain")
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def upstreams(self) -> ProvidersReport:
        """The router's view of the upstreams, for ``GET /admin/providers``: every key of every
        pool (by id) and every deployment's breaker."""
        return ProvidersReport.model_validate(
            {
                "providers": [{"name": name, "keys": p.keys.state()} for name, p in sorted(self.providers.items())],
                "deployments": [h.state() for h in self.catalog.health()],
                "routing_state": self.routing_state.describe(),
            }
        )

    def door_for_path(self, path: str) -> FrontDoor:
        """The front door whose envelope fits a path no route matched (Anthropic by default)."""
        parts = path.split("/", 4)  # an endpoint's: ["", "v1", id, provider, rest]
        if len(parts) > 3 and parts[1] == "v1" and parts[3] in _ENDPOINT_PROTOCOLS:
            protocol = _ENDPOINT_PROTOCOLS[parts[3]]
            if protocol is WireProtocol.OPENAI_CHAT and "/responses" in path:
                protocol = WireProtocol.OPENAI_RESPONSES
            return self.doors[protocol]
        for prefixes, protocol in _PATH_PROTOCOLS:
            if path.startswith(prefixes):
                return self.doors[protocol]
        return self.anthropic

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Unknown paths and wrong methods, in the envelope of the protocol the path belongs to."""
        assert isinstance(exc, HTTPException)
        message = f"Not found: {request.method} {request.url.path}" if exc.status_code == 404 else exc.detail
        response = self.door_for_path(request.url.path).error_response(
            http_error(exc.status_code, message or "error"), new_request_id()
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def crash(self, request: Request, exc: Exception) -> Response:
        request_id = new_request_id()
        log.error("unexpected error (request %s)", request_id, exc_info=exc)
        door = self.door_for_path(request.url.path)
        return door.error_response(InternalError(f"internal error (request {request_id})"), request_id)


def create_app(config: Config | None = None) -> Starlette:
    """ASGI factory: the config comes from ``$MODELGATE_CONFIG`` (a file) or the environment."""
    if config is None:
        config = load_config(os.environ.get(CONFIG_ENV) or None)
    return Gateway(config).asgi()
