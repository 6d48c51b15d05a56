"""The Gemini front door: ``models/{model}:generateContent``, ``:streamGenerateContent``
(``?alt=sse`` or a JSON array) and ``:countTokens``, under ``/v1beta`` (Gemini CLI, REST),
``/v1`` (google-genai with ``api_version="v1"``) and ``/api/gemini/…``.

The model comes from the path (``models/gemini-2.5-flash:generateContent``: the last ``:``
separates the method). The key is accepted as ``x-goog-api-key``, ``?key=`` or
``Authorization: Bearer``. Errors use Google's envelope and statuses (see
``protocols.gemini.errors``): no key → 403 ``PERMISSION_DENIED``, a wrong key → 400
``API_KEY_INVALID``, an unknown model → 404 ``NOT_FOUND`` in Google's words.

When the routed provider speaks Gemini, the client's bytes go to
``{base_url}/{version}/models/{upstream_model}:{method}`` untouched (the model is in the URL;
the body changes only when it names the model too and the upstream knows it by another
name), with the client's API version (google-genai 3 uses ``v1``, Gemini CLI ``v1beta``) and
query minus its ``key``, and the answer comes back untouched. Otherwise the request goes
through the IR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate import ir
from modelgate.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from modelgate.frontdoors.base import CLIENT_CLOSED, JSON, Call, FrontDoor, StreamEncoder, Target
from modelgate.frontdoors.pipeline import ClientDisconnected, new_request_id, read_body, until_disconnect
from modelgate.policy.auth import bearer
from modelgate.protocols import gemini as codec
from modelgate.providers.gemini import ARRAY_CONTENT_TYPE, GeminiProvider

if TYPE_CHECKING:
    from modelgate.routing.catalog import Route as ModelRoute

_STREAMING = {"generateContent": False, "streamGenerateContent": True}


@dataclass(slots=True)
class GeminiCall(Call):
    """A Gemini call also knows its method, API version and stream framing."""

    method: str = "generateContent"
    version: str = "v1beta"
    sse: bool = False


class GeminiFrontDoor(FrontDoor):
    protocol = codec.PROTOCOL
    request_id_header = "x-request-id"

    def routes(self, prefix: str = "") -> list[Route]:
        routes = [
            Route(f"{prefix}/{v}/models/{{target:path}}", self.dispatch, methods=["POST"]) for v in ("v1beta", "v1")
        ]
        if prefix:  # the bare catalog paths are served by frontdoors.catalogs
            routes.append(Route(prefix + "/v1beta/models", self.list_models, methods=["GET"]))
            routes.append(Route(prefix + "/v1beta/models/{model_id:path}", self.get_model, methods=["GET"]))
        return routes

    # ------------------------------------------------------------------ protocol hooks

    def credentials(self, request: Request) -> list[str]:
        headers = request.headers
        found = (headers.get("x-goog-api-key"), request.query_params.get("key"), bearer(headers.get("authorization")))
        return [c for c in found if c]

    def error_body(self, err: GatewayError, request_id: str) -> Any:
        return codec.error_body(err)

    def error_response(self, err: GatewayError, request_id: str) -> Response:
        """Google's envelope, whose ``code`` is also the HTTP status (it may differ from ``err.status``)."""
        status, body = codec.render_error(err)
        headers = {self.request_id_header: request_id, **err.headers}
        if err.retry_after is not None:
            headers["retry-after"] = str(max(0, math.ceil(err.retry_after)))
        return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)

    def decode(self, call: Call) -> ir.Request:
        return codec.decode_request(call.body)

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp, include_thoughts=codec.include_thoughts(call.body))

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        sse = call.sse if isinstance(call, GeminiCall) else True
        return codec.StreamEncoder(sse=sse, include_thoughts=codec.include_thoughts(call.body))

    def passthrough(self, request: Request, call: Call, route: ModelRoute) -> Target:
        provider = route.provider
        assert isinstance(provider, GeminiProvider) and isinstance(call, GeminiCall)
        url = provider.url(route.upstream_model, call.method, version=call.version)
        query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "key"]
        if query:
            url += "?" + urlencode(query)
        return Target(url, _with_model(call, route.upstream_model), provider.headers(request.headers))

    # ------------------------------------------------------------------ endpoints

    async def authenticate(self, request: Request) -> Any:
        credentials = self.credentials(request)
        if not credentials:
            raise PermissionDenied(codec.KEY_MISSING)
        return await self.gw.authenticator.authenticate(credentials)

    async def dispatch(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            model, _, method = request.path_params["target"].rpartition(":")
            model = model.removeprefix("models/")
            if method != "countTokens" and method not in _STREAMING:
                raise NotFound(f"Method not found: models/{model}:{method} is not served by this gateway.")
            await self.authenticate(request)
            raw = await read_body(request, self.gw.config.server.max_body_bytes)
            body = _parse(raw)
            version = "v1" if request.url.path.rpartition("/models/")[0].endswith("/v1") else "v1beta"
            stream = _STREAMING.get(method, False)
            sse = request.query_params.get("alt") == "sse"
            call = GeminiCall(raw or b"{}", body, model, stream, method, version, sse)
            self._resolve(call)
        except GatewayError as e:
            return self.error_response(e, request_id)
        if method == "countTokens":
            return await self.count_tokens(request, call, request_id)
        response = await self.serve(request, call)
        if stream and not sse and response.status_code == 200:
            response.headers["content-type"] = ARRAY_CONTENT_TYPE
        return response

    def _resolve(self, call: GeminiCall) -> ModelRoute:
        try:
            return self.gw.catalog.resolve(call.model)
        except NotFound:
            raise NotFound(
                f"models/{call.model} is not found for API version {call.version}, or is not supported for "
                f"{call.method}. Call ListModels to see the list of available models and their supported methods."
            ) from None

    async def count_tokens(self, request: Request, call: GeminiCall, request_id: str) -> Response:
        """Forwarded to a Gemini upstream; otherwise the upstream's count (Anthropic) or the
        local estimate (``accounting.tokens``), as ``{"totalTokens": N}``."""
        try:
            route = self._resolve(call)
            provider = route.provider
            if provider.passes_through(self.protocol, route.upstream_model):
                return await self.forward(request, route, self.passthrough(request, call, route), request_id)
            req = codec.decode_count_request(call.body)
            req.model = route.upstream_model
            tokens = await until_disconnect(request, provider.count_tokens(req))
            return self.json_response({"totalTokens": tokens}, request_id)
        except GatewayError as e:
            return self.error_response(e, request_id)
        except ClientDisconnected:
            return Response(status_code=CLIENT_CLOSED)

    async def list_models(self, request: Request) -> Response:
        return await self.gw.catalogs.list_gemini(request)

    async def get_model(self, request: Request) -> Response:
        return await self.gw.catalogs.get_gemini(request)


def _with_model(call: GeminiCall, upstream_model: str) -> bytes:
    """The client's bytes, unless the body names the model (an optional ``model`` field, or the
    ``generateContentRequest`` of a count) and the upstream knows it by another name: then the
    body is re-serialised with that name (orjson keeps key order and every string as it was)."""
    if upstream_model == call.model:
        return call.raw
    body = call.body
    inner = body.get("generateContentRequest")
    if isinstance(body.get("model"), str):
        return orjson.dumps({**body, "model": f"models/{upstream_model}"})
    if isinstance(inner, dict) and isinstance(inner.get("model"), str):
        return orjson.dumps({**body, "generateContentRequest": {**inner, "model": f"models/{upstream_model}"}})
    return call.raw


def _parse(raw: bytes) -> Any:
    """The JSON body, or Google's 400 for what it cannot parse (an empty body is an empty request)."""
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        text = raw.decode("utf-8", errors="replace")
        pos = min(e.pos, len(text))
        begin = max(text.rfind("\n", 0, pos) + 1, pos - 40)
        end = text.find("\n", pos)
        line = text[begin : min(end if end >= 0 else len(text), pos + 40)]
        raise InvalidRequest(
            f"Invalid JSON payload received. Unexpected token.\n{line}\n{' ' * (pos - begin)}^"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest('Invalid JSON payload received. Unknown name "": Root element must be a message.')
    return body
