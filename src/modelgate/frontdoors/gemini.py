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
query minus its ``key``, and the answer comes back untouched. With the provider's
``force_stream``, a non-streamed ``generateContent`` goes as ``streamGenerateContent?alt=sse``
and the stream is collected into the whole answer (``protocols.gemini.collect``). Otherwise
the request goes through the IR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate import ir
from modelgate.errors import AuthenticationFailed, GatewayError, InvalidRequest, NotFound, PermissionDenied
from modelgate.frontdoors.base import FrontDoor, count_field, rewrite
from modelgate.pipeline.context import Call, Operation
from modelgate.policy.auth import bearer
from modelgate.protocols import gemini as codec
from modelgate.protocols.codec import StreamCollector, StreamEncoder
from modelgate.protocols.gemini.fields import get as codec_get
from modelgate.protocols.tap import AnswerTap
from modelgate.providers.gemini import ARRAY_CONTENT_TYPE

#: Methods served, and whether each streams.
_STREAMING = {"generateContent": False, "streamGenerateContent": True, "countTokens": False}


@dataclass(slots=True)
class GeminiCall(Call):
    """A Gemini call also knows its method and stream framing."""

    method: str = "generateContent"
    sse: bool = False


def _target(request: Request) -> tuple[str, str]:
    """(model, method) of ``models/{model}:{method}`` (the last ``:`` separates the method)."""
    model, _, method = request.path_params["target"].rpartition(":")
    return model.removeprefix("models/"), method


class GeminiFrontDoor(FrontDoor):
    protocol = codec.PROTOCOL
    request_id_header = "x-request-id"

    def routes(self, prefix: str = "") -> list[Route]:
        return [
            Route(f"{prefix}/{v}/models/{{target:path}}", self.dispatch, methods=["POST"]) for v in ("v1beta", "v1")
        ]

    async def dispatch(self, request: Request) -> Response:
        method = _target(request)[1]
        operation = Operation.COUNT_TOKENS if method == "countTokens" else Operation.GENERATE
        return await self.chain.handle(request, self, operation, method)

    # ------------------------------------------------------------------ admit

    def check_path(self, request: Request) -> None:
        model, method = _target(request)
        if method not in _STREAMING:
            raise NotFound(f"Method not found: models/{model}:{method} is not served by this gateway.")

    def credentials(self, request: Request) -> list[str]:
        headers = request.headers
        found = (headers.get("x-goog-api-key"), request.query_params.get("key"), bearer(headers.get("authorization")))
        return [c for c in found if c]

    def authentication_error(self, err: AuthenticationFailed, credentials: list[str]) -> GatewayError:
        """No key is Google's 403; a wrong one its 400 ``API_KEY_INVALID`` (see ``render_error``)."""
        return err if credentials else PermissionDenied(codec.KEY_MISSING)

    def parse(self, request: Request, raw: bytes, operation: Operation) -> Call:
        model, method = _target(request)
        body = _parse(raw)
        version = "v1" if request.url.path.rpartition("/models/")[0].endswith("/v1") else "v1beta"
        sse = request.query_params.get("alt") == "sse"
        return GeminiCall(operation, raw or b"{}", body, model, _STREAMING[method], version, method, sse)

    def max_tokens(self, call: Call) -> int | None:
        return count_field(call.body.get("generationConfig"), "maxOutputTokens")

    def model_not_found(self, call: Call, err: NotFound) -> GatewayError:
        method = call.method if isinstance(call, GeminiCall) else "generateContent"
        return NotFound(
            f"models/{call.model} is not found for API version {call.api_version}, or is not supported for "
            f"{method}. Call ListModels to see the list of available models and their supported methods."
        )

    # ------------------------------------------------------------------ errors, passthrough

    def render_error(self, err: GatewayError, request_id: str) -> tuple[int, Any]:
        """Google's envelope, whose ``code`` is also the HTTP status (it may differ from ``err.status``)."""
        return codec.render_error(err, request_id)

    def passthrough_query(self, request: Request) -> str:
        """The client's query minus its ``key`` (``alt=sse`` passes)."""
        query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "key"]
        return "?" + urlencode(query) if query else ""

    def passthrough_body(self, call: Call, upstream_model: str, max_tokens_cap: int | None = None) -> bytes:
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

    def think(self, call: Call, upstream_model: str, budget: int) -> None:
        """``thinkingBudget`` in the generation config (either spelling), unless it says
        something of thinking already."""
        body = call.body
        key = "generation_config" if "generation_config" in body else "generationConfig"
        config = body.get(key)
        config = config if isinstance(config, dict) else {}
        thinking = codec_get(config, "thinkingConfig")
        thinking = thinking if isinstance(thinking, dict) else {}
        if codec_get(thinking, "thinkingBudget") not in (None, 0) or codec_get(thinking, "thinkingLevel"):
            return
        thinking_key = "thinking_config" if "thinking_config" in config else "thinkingConfig"
        config = {**config, thinking_key: {**thinking, "thinkingBudget": budget}}
        rewrite(call, {**body, key: config})

    def forced_stream(self, call: Call, body: bytes) -> tuple[bytes, StreamCollector] | None:
        """A ``generateContent`` goes as ``streamGenerateContent`` with the same body (the
        URL: :meth:`forced_stream_url`), collected by ``protocols.gemini.collect``; never a
        count."""
        if call.operation is not Operation.GENERATE or (
            isinstance(call, GeminiCall) and call.method != "generateContent"
        ):
            return None
        return body, codec.ResponseCollector()

    def forced_stream_url(self, call: Call, url: str) -> str:
        """``…:generateContent?{query}`` → ``…:streamGenerateContent?alt=sse&{query}`` (the
        client's other parameters kept, an ``alt`` of its own replaced)."""
        parts = urlsplit(url)
        path = parts.path.removesuffix(":generateContent") + ":streamGenerateContent"
        query = [("alt", "sse"), *((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "alt")]
        return urlunsplit(parts._replace(path=path, query=urlencode(query)))

    def tap(self, call: Call) -> AnswerTap | None:
        if call.operation is not Operation.GENERATE:
            return None
        return codec.GeminiTap(sse=call.sse if isinstance(call, GeminiCall) else True)

    def relay_error(self, err: GatewayError, call: Call, tap: AnswerTap | None, request_id: str) -> bytes:
        """A JSON-array stream was closed with its error element by the relay itself
        (``providers.gemini``); an SSE stream ends with an error frame."""
        if isinstance(call, GeminiCall) and not call.sse:
            return b""
        return super().relay_error(err, call, tap, request_id)

    def stream_media_type(self, call: Call) -> str:
        sse = call.sse if isinstance(call, GeminiCall) else True
        return "text/event-stream" if sse else ARRAY_CONTENT_TYPE

    # ------------------------------------------------------------------ translated

    def decode(self, call: Call) -> ir.Request:
        return codec.decode_request(call.body)

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp, include_thoughts=codec.include_thoughts(call.body))

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        sse = call.sse if isinstance(call, GeminiCall) else True
        return codec.StreamEncoder(sse=sse, include_thoughts=codec.include_thoughts(call.body))

    def decode_count(self, call: Call) -> ir.Request:
        """Counted by a Gemini upstream's ``countTokens`` on the passthrough path; otherwise the
        upstream's count (Anthropic) or the local estimate (``accounting.tokens``)."""
        return codec.decode_count_request(call.body)

    def count_body(self, call: Call, tokens: int) -> Any:
        return {"totalTokens": tokens}


def _parse(raw: bytes) -> dict[str, Any]:
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
    codec.check_request(body)
    return cast(dict[str, Any], body)  # check_request refuses anything but an object
