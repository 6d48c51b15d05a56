"""Model listings in every client's shape: ``/v1/models``, ``/models``, ``/v1beta/models``,
``/v2/model/info``.

``/v1/models`` answers in the caller's own shape: Anthropic's when the request
carries ``anthropic-version`` or ``x-api-key``, Gemini's for ``x-goog-api-key``
or ``?key=``, OpenAI's otherwise — clients of all three ask the same path.

Under a per-application endpoint's base URLs (``/v1/<id>/anthropic``, ``/openai``,
``/gemini``) the shape is the provider's of the path, and the listing holds only the
models the endpoint allows (another is not found, as an unknown one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate.accounting.pricing import model_facts
from modelgate.config import ModelConfig
from modelgate.errors import GatewayError, InvalidRequest, NotFound
from modelgate.frontdoors.base import FrontDoor
from modelgate.pipeline.admit import Admission
from modelgate.pipeline.context import new_request_id
from modelgate.policy.keys import allowed_model
from modelgate.protocols import WireProtocol
from modelgate.routing.catalog import ModelCatalog
from modelgate.store import EndpointRecord

#: ``created`` for OpenAI-shaped entries: a fixed time, so listings are stable.
CREATED = 1735689600  # 2025-01-01T00:00:00Z


def caller_protocol(request: Request) -> WireProtocol:
    headers = request.headers
    if "anthropic-version" in headers or "x-api-key" in headers:
        return WireProtocol.ANTHROPIC
    if "x-goog-api-key" in headers or "key" in request.query_params:
        return WireProtocol.GEMINI
    return WireProtocol.OPENAI_CHAT


class ModelListings:
    """The catalog endpoints; each authenticates and answers in its caller's protocol."""

    def __init__(
        self,
        catalog: ModelCatalog,
        admission: Admission,
        doors: Mapping[WireProtocol, FrontDoor],
        created_at: str = "2025-01-01T00:00:00Z",
    ) -> None:
        self.catalog = catalog
        self.admission = admission
        self.doors = doors
        self.created_at = created_at

    def routes(self) -> list[Route]:
        routes = [
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", self.get_model, methods=["GET"]),
            Route("/models", self.list_models, methods=["GET"]),
            Route("/v1beta/models", self.list_gemini, methods=["GET"]),
            Route("/v1beta/models/{model_id:path}", self.get_gemini, methods=["GET"]),
            Route("/v2/model/info", self.model_info, methods=["GET"]),
        ]
        for prefix in ("/api/anthropic", "/api/openai", "/v1"):  # /v1/v1: a base URL written with /v1
            routes.append(Route(prefix + "/v1/models", self.list_models, methods=["GET"]))
            routes.append(Route(prefix + "/v1/models/{model_id:path}", self.get_model, methods=["GET"]))
        routes.append(Route("/api/gemini/v1beta/models", self.list_gemini, methods=["GET"]))
        routes.append(Route("/api/gemini/v1beta/models/{model_id:path}", self.get_gemini, methods=["GET"]))
        return routes

    def endpoint_routes(self, prefix: str) -> list[Route]:
        """The listings under a per-application endpoint's base URLs (``prefix`` holds ``{endpoint_id}``)."""
        anthropic, openai, gemini = prefix + "/anthropic", prefix + "/openai", prefix + "/gemini"
        pairs = [(anthropic + "/v1/models", self.list_anthropic, self.get_anthropic)]
        pairs += [(base + "/models", self.list_openai, self.get_openai) for base in (openai, openai + "/v1")]
        pairs += [(f"{gemini}/{v}/models", self.list_gemini, self.get_gemini) for v in ("v1beta", "v1")]
        routes = []
        for path, listing, one in pairs:
            routes.append(Route(path, listing, methods=["GET"]))
            routes.append(Route(path + "/{model_id:path}", one, methods=["GET"]))
        return routes

    # ------------------------------------------------------------------ plumbing

    async def _answer(self, request: Request, protocol: WireProtocol, build: Callable[[], Any]) -> Response:
        door = self.doors[protocol]
        request_id = new_request_id()
        try:
            caller = await self.admission.authenticate(request, door)  # the caller's own key places and wording
            endpoint_id = request.path_params.get("endpoint_id")
            if endpoint_id is not None:
                request.state.endpoint = self.admission.endpoint(None, endpoint_id, caller)
            return door.json_response(build(), request_id)
        except GatewayError as e:
            return door.error_response(e, request_id)

    def _models(self, request: Request) -> list[ModelConfig]:
        models = self.catalog.listed()
        endpoint = _endpoint(request)
        if endpoint is not None and endpoint.models:
            return [m for m in models if allowed_model(m.name, endpoint.models)]
        return models

    def _model(self, request: Request, name: str) -> ModelConfig:
        endpoint = _endpoint(request)
        if endpoint is not None and endpoint.models and not allowed_model(name, endpoint.models):
            raise NotFound(f"model: no provider serves model {name!r}", param="model")  # as for an unknown one
        return self.catalog.model(name)

    # ------------------------------------------------------------------ /v1/models

    async def list_models(self, request: Request) -> Response:
        protocol = WireProtocol.OPENAI_CHAT if request.url.path == "/models" else caller_protocol(request)
        if protocol is WireProtocol.ANTHROPIC:
            return await self.list_anthropic(request)
        if protocol is WireProtocol.GEMINI:
            return await self.list_gemini(request)
        return await self.list_openai(request)

    async def get_model(self, request: Request) -> Response:
        protocol = caller_protocol(request)
        if protocol is WireProtocol.ANTHROPIC:
            return await self.get_anthropic(request)
        if protocol is WireProtocol.GEMINI:
            return await self.get_gemini(request)
        return await self.get_openai(request)

    async def list_anthropic(self, request: Request) -> Response:
        return await self._answer(request, WireProtocol.ANTHROPIC, lambda: self._anthropic_page(request))

    async def get_anthropic(self, request: Request) -> Response:
        name = request.path_params["model_id"]
        return await self._answer(request, WireProtocol.ANTHROPIC, lambda: self._anthropic(request, name))

    async def list_openai(self, request: Request) -> Response:
        def build() -> dict[str, Any]:
            return {"object": "list", "data": [self._openai(request, m.name) for m in self._models(request)]}

        return await self._answer(request, WireProtocol.OPENAI_CHAT, build)

    async def get_openai(self, request: Request) -> Response:
        name = request.path_params["model_id"]
        return await self._answer(request, WireProtocol.OPENAI_CHAT, lambda: self._openai(request, name))

    def _anthropic(self, request: Request, name: str) -> dict[str, Any]:
        model = self._model(request, name)
        return {
            "type": "model",
            "id": name,
            "display_name": model.display_name or name,
            "created_at": self.created_at,
        }

    def _anthropic_page(self, request: Request) -> dict[str, Any]:
        names = [m.name for m in self._models(request)]
        page = paginate(names, request.query_params)
        return {
            "data": [self._anthropic(request, n) for n in page],
            "has_more": bool(page) and names.index(page[-1]) < len(names) - 1,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    def _openai(self, request: Request, name: str) -> dict[str, Any]:
        try:
            model = self._model(request, name)
        except NotFound:
            raise NotFound(
                f"The model `{name}` does not exist or you do not have access to it.", param="model"
            ) from None
        return {"id": name, "object": "model", "created": CREATED, "owned_by": model.primary.provider}

    # ------------------------------------------------------------------ Gemini

    async def list_gemini(self, request: Request) -> Response:
        return await self._answer(request, WireProtocol.GEMINI, lambda: self._gemini_page(request))

    async def get_gemini(self, request: Request) -> Response:
        name = request.path_params["model_id"].removeprefix("models/")
        return await self._answer(request, WireProtocol.GEMINI, lambda: self._gemini(request, name))

    def _gemini(self, request: Request, name: str) -> dict[str, Any]:
        model = self._model(request, name)
        facts = model_facts(model)
        out: dict[str, Any] = {
            "name": f"models/{name}",
            "version": "001",
            "displayName": model.display_name or name,
            "description": f"{name}, served by modelgate through provider {model.primary.provider}",
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        if facts.context_window:
            out["inputTokenLimit"] = facts.context_window
        if facts.max_output_tokens:
            out["outputTokenLimit"] = facts.max_output_tokens
        out["thinking"] = facts.reasoning
        return out

    def _gemini_page(self, request: Request) -> dict[str, Any]:
        query = request.query_params
        try:
            size = int(query.get("pageSize", 50))
            start = int(query.get("pageToken") or 0)
        except ValueError:
            raise InvalidRequest("pageSize and pageToken must be integers") from None
        size = max(1, min(size, 1000))
        names = [m.name for m in self._models(request)]
        out: dict[str, Any] = {"models": [self._gemini(request, n) for n in names[start : start + size]]}
        if start + size < len(names):
            out["nextPageToken"] = str(start + size)
        return out

    # ------------------------------------------------------------------ /v2/model/info

    async def model_info(self, request: Request) -> Response:
        body = lambda: {"data": [self._info(m) for m in self._models(request)]}  # noqa: E731
        return await self._answer(request, WireProtocol.OPENAI_CHAT, body)

    def _info(self, model: ModelConfig) -> dict[str, Any]:
        """LiteLLM's ``/v2/model/info`` shape, which dashboards and clients already read."""
        facts = model_facts(model)
        primary = model.primary
        provider = self.catalog.provider(primary.provider)
        per_token = 1e-6
        price = facts.price
        info: dict[str, Any] = {
            "id": model.name,
            "provider": primary.provider,
            "provider_type": provider.config.type,
            "upstream_model": primary.upstream_model or model.name,
            "mode": "chat",
            "max_input_tokens": facts.context_window,
            "max_output_tokens": facts.max_output_tokens,
            "max_tokens": facts.max_output_tokens,
            "input_cost_per_token": price.input * per_token if price else None,
            "output_cost_per_token": price.output * per_token if price else None,
            "cache_read_input_token_cost": price.cache_read * per_token if price else None,
            "cache_creation_input_token_cost": price.cache_write * per_token if price else None,
            "supports_function_calling": facts.tools,
            "supports_vision": facts.vision,
            "supports_reasoning": facts.reasoning,
            "supports_prompt_caching": facts.prompt_caching,
            "supported_protocols": sorted(provider.protocols),
        }
        return {"model_name": model.name, "litellm_params": {"model": info["upstream_model"]}, "model_info": info}


def _endpoint(request: Request) -> EndpointRecord | None:
    """The per-application endpoint ``_answer`` admitted the request through, if any."""
    return request.state.endpoint if "endpoint_id" in request.path_params else None


def paginate(names: list[str], query: Any) -> list[str]:
    """Anthropic-style paging over ids: ``limit`` (1–1000, default 20), ``after_id``, ``before_id``."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise InvalidRequest("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: Input should be between 1 and 1000")
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None:
        start = names.index(after) + 1 if after in names else len(names)
        return names[start : start + limit]
    if before is not None:
        end = names.index(before) if before in names else 0
        return names[max(0, end - limit) : end]
    return names[:limit]
