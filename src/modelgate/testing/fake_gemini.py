"""The Gemini API, as the fake upstream serves it.

Serves ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` (with
``?alt=sse``: ``data: {…}\\r\\n\\r\\n`` frames; without: one JSON array, element by element),
``:countTokens``, and ``GET /v1beta/models[/{id}]``; also under ``/v1``. Scripts match it
with protocol ``gemini`` and endpoint ``generateContent`` (``count_tokens`` for counting).

Faithful details worth knowing when writing tests against it:

* auth: ``x-goog-api-key`` or ``?key=``. No key → 403 ``PERMISSION_DENIED``; a Bearer
  token instead → 401 ``UNAUTHENTICATED``; a wrong key (with ``require_key``) → 400
  ``INVALID_ARGUMENT`` with an ``API_KEY_INVALID`` detail, as Google answers;
* errors are ``{"error": {"code", "message", "status"[, "details"]}}``; a 429 carries a
  ``RetryInfo`` detail (``retryDelay``) rather than a ``retry-after`` header;
* unknown fields, a bad role, empty ``contents`` or ``parts`` → 400 in Google's words;
  field names are accepted in camelCase and snake_case;
* non-streamed answers are pretty-printed JSON, stream chunks one line with ``": "``
  separators, ``<`` and ``>`` escaped as Google writes them;
* thinking (scripted, or automatic when ``thinkingConfig.includeThoughts`` is true) counts
  as ``thoughtsTokenCount`` and shows as ``thought`` parts only with ``includeThoughts``;
* the first ``functionCall`` part of an answer carries a ``thoughtSignature``, calls have
  no ``id`` (as Gemini 2.5 answers); without function calls, an answer that thought puts a
  signature on its text (streamed: on a last, empty text part);
* with ``verify_signatures`` (the default): a ``functionCall`` sent back with a signature
  the fake did not issue → 400 "Corrupted thought signature."; on ``gemini-3*`` models, the
  first function call of each model turn of the current turn without a signature → 400
  "Function call is missing a thought_signature …" (Google's rule); the documented
  ``skip_thought_signature_validator`` is accepted;
* usage: ``promptTokenCount`` = the input formula of ``reply`` over [systemInstruction,
  contents, tools], ``candidatesTokenCount`` = output without thoughts, every chunk has
  ``modelVersion`` and ``responseId``; the last chunk has ``finishReason`` and full usage.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from modelgate.testing.http import Incoming, Send, make_headers, send_body
from modelgate.testing.reply import Reply, Turn, estimate_tokens, sign, split_pieces
from modelgate.testing.respond import delayed, error_instead, reply_to, send_reply, stream_reply
from modelgate.testing.script import ErrorSpec, ScriptError

# The fake reads Gemini JSON on its own, as Google's servers do (both field spellings;
# standard or url-safe base64), rather than with the gateway's codec: a bug there must
# not be mirrored here.
_UPPER = re.compile(r"(?<!^)([A-Z])")
#: Signature values Google documents as "skip validation" for function calls from other models.
SKIP_VALUES = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})


def get(obj: dict[str, Any], name: str, default: Any = None) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling."""
    if name in obj:
        return obj[name]
    return obj.get(_UPPER.sub(r"_\1", name).lower(), default)


def b64decode(value: str) -> bytes | None:
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


if TYPE_CHECKING:
    from modelgate.testing.fake_upstream import FakeState

PROTOCOL = "gemini"
JSON_UTF8 = b"application/json; charset=UTF-8"
SSE = b"text/event-stream"
#: (id, display name, input limit, output limit)
MODELS: tuple[tuple[str, str, int, int], ...] = (
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 1048576, 65536),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 1048576, 65536),
    ("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", 1048576, 65536),
    ("gemini-3-pro-preview", "Gemini 3 Pro Preview", 1048576, 65536),
    ("gemini-3-flash-preview", "Gemini 3 Flash Preview", 1048576, 65536),
)
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
KEY_MISSING = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
KEY_INVALID = "API key not valid. Please pass a valid API key."
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, function "
    "call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
FINISH_REASONS = {"max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}
_TOP = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "generationConfig",
        "cachedContent",
    }
)
_DATA = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse"})
_DATA = _DATA | {"inline_data", "file_data", "function_call", "function_response"}


# --------------------------------------------------------------------------- JSON as Google writes it


def dumps(obj: Any, *, pretty: bool = False) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, indent=2 if pretty else None, separators=(",", ": "))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").encode()


def envelope(status: int, message: str, name: str | None = None, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": name or _name(status)}
    if details:
        error["details"] = details
    return {"error": error}


def _name(status: int) -> str:
    return STATUS_NAMES.get(status) or ("INVALID_ARGUMENT" if status < 500 else "INTERNAL")


async def send_error(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> int:
    await send_body(send, status, dumps(body, pretty=True), make_headers(JSON_UTF8, headers))
    return status


def key_invalid() -> dict[str, Any]:
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": KEY_INVALID},
    ]
    return envelope(400, KEY_INVALID, details=details)


def api_key(inc: Incoming) -> str | None:
    return inc.headers.get("x-goog-api-key") or inc.params().get("key")


def _auth_problem(state: FakeState, inc: Incoming) -> tuple[int, dict[str, Any]] | None:
    key = api_key(inc)
    if not key:
        if inc.headers.get("authorization", "")[:7].lower() == "bearer ":
            return 401, envelope(401, MESSAGES[401])
        return 403, envelope(403, KEY_MISSING)
    if state.config.require_key is not None and key != state.config.require_key:
        return 400, key_invalid()
    return None


# --------------------------------------------------------------------------- routing


def is_gemini(inc: Incoming) -> bool:
    """``/v1beta/…``, and ``/v1/models…`` when it names a method or carries a Google key
    (google-genai 3 uses ``/v1``; Anthropic and OpenAI clients list models there too)."""
    path = inc.path
    if path.startswith("/v1beta/"):
        return True
    if not path.startswith("/v1/models"):
        return False
    return ":" in path or "x-goog-api-key" in inc.headers or "key" in inc.params()


async def route(state: FakeState, inc: Incoming, send: Send, too_large: bool) -> int:
    """Every Gemini request (see :func:`is_gemini`)."""
    problem = _auth_problem(state, inc)
    if problem:
        return await send_error(send, *problem)
    if too_large:
        limit = state.config.max_body_bytes
        return await send_error(send, 400, envelope(400, f"Request payload size exceeds the limit: {limit} bytes."))
    version, _, rest = inc.path[1:].partition("/")
    if inc.method == "GET" and rest == "models":
        return await _list_models(inc, send)
    if inc.method == "GET" and rest.startswith("models/"):
        return await _get_model(send, rest[len("models/") :], version)
    if inc.method == "POST" and rest.startswith("models/") and ":" in rest:
        model, _, method = rest[len("models/") :].rpartition(":")
        if method in ("generateContent", "streamGenerateContent"):
            return await generate(state, inc, send, model, stream=method == "streamGenerateContent")
        if method == "countTokens":
            return await count_tokens(state, inc, send, model)
    return await send_error(send, 404, envelope(404, f"Method not found: {inc.method} {inc.path}"))


# --------------------------------------------------------------------------- validation


def _parse(inc: Incoming) -> tuple[Any, str | None]:
    if not inc.body.strip():
        return {}, None
    try:
        body = json.loads(inc.body)
    except ValueError:
        return None, "Invalid JSON payload received. Unexpected token."
    if not isinstance(body, dict):
        return None, 'Invalid JSON payload received. Unknown name "": Root element must be a message.'
    return body, None


def _unknown(obj: dict[str, Any], known: frozenset[str], where: str) -> str | None:
    for key in obj:
        camel = key.split("_")[0] + "".join(p[:1].upper() + p[1:] for p in key.split("_")[1:])
        if key not in known and camel not in known:
            at = f" at '{where}'" if where else ""
            return f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
    return None


def _invalid(body: dict[str, Any]) -> str | None:
    problem = _unknown(body, _TOP, "")
    if problem:
        return problem
    for name in ("generationConfig", "systemInstruction", "toolConfig"):
        value = get(body, name)
        if value is not None and not isinstance(value, dict):
            return f"Invalid value at '{name}' (type.googleapis.com/google.ai.generativelanguage.v1beta), {value!r}"
    config = get(body, "generationConfig") or {}
    if not isinstance(get(config, "thinkingConfig") or {}, dict):
        return "Invalid value at 'generation_config.thinking_config'"
    contents = get(body, "contents")
    if not contents or not isinstance(contents, list):
        return "* GenerateContentRequest.contents: contents is not specified\n"
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            return f"Invalid value at 'contents[{i}]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)"
        if get(content, "role") not in (None, "user", "model", "function"):
            return "Please use a valid role: user, model."
        parts = get(content, "parts")
        if not parts or not isinstance(parts, list):
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
        for j, part in enumerate(parts):
            if not isinstance(part, dict) or not _DATA & part.keys():
                return (
                    f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must "
                    "have one initialized field\n"
                )
    return None


def _call_signature(name: str) -> str:
    return sign("gemini-call:" + name)


def _signature_problem(model: str, contents: list[dict[str, Any]]) -> str | None:
    """Google's rules for function-call signatures sent back (see the module docstring)."""
    for content in contents:
        for part in get(content, "parts") or ():
            call = get(part, "functionCall")
            signature = get(part, "thoughtSignature")
            if isinstance(call, dict) and isinstance(signature, str) and signature not in SKIP_VALUES:
                expected = b64decode(_call_signature(str(get(call, "name"))))
                if b64decode(signature) != expected:
                    return "Corrupted thought signature."
    if not model.startswith("gemini-3"):
        return None
    start = 0
    for i, content in enumerate(contents):
        parts = get(content, "parts") or ()
        if get(content, "role") != "model" and any(isinstance(get(p, "text"), str) for p in parts):
            start = i
    for i in range(start, len(contents)):
        content = contents[i]
        if get(content, "role") != "model":
            continue
        first = next((p for p in get(content, "parts") or () if isinstance(get(p, "functionCall"), dict)), None)
        if first is not None and not get(first, "thoughtSignature"):
            return MISSING_SIGNATURE.format(name=get(get(first, "functionCall"), "name"), position=i + 1)
    return None


# --------------------------------------------------------------------------- the turn


def _result_text(response: Any) -> str:
    if isinstance(response, dict) and len(response) == 1:
        value = next(iter(response.values()))
        if isinstance(value, str):
            return value
    return json.dumps(response, separators=(",", ":"), ensure_ascii=False)


def input_tokens(body: dict[str, Any]) -> int:
    return estimate_tokens([get(body, "systemInstruction"), get(body, "contents"), get(body, "tools")])


def _turn(body: dict[str, Any], model: str) -> Turn:
    contents = get(body, "contents")
    last = next((c for c in reversed(contents) if get(c, "role") != "model"), None)
    texts: list[str] = []
    results: list[str] | None = None
    for part in get(last, "parts") or () if last else ():
        if isinstance(get(part, "text"), str) and get(part, "thought") is not True:
            texts.append(get(part, "text"))
        fr = get(part, "functionResponse")
        if isinstance(fr, dict):
            results = results if results is not None else []
            results.append(_result_text(get(fr, "response")))
    config = get(body, "generationConfig") or {}
    thinking = get(config, "thinkingConfig") or {}
    limit = get(config, "maxOutputTokens")
    return Turn(
        model=model,
        user_text="\n".join(texts),
        tool_results=results,
        input_tokens=input_tokens(body),
        max_tokens=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        stop_sequences=tuple(s for s in get(config, "stopSequences") or () if isinstance(s, str)),
        auto_thinking=get(thinking, "includeThoughts") is True and get(thinking, "thinkingBudget") != 0,
    )


# --------------------------------------------------------------------------- handlers


async def generate(state: FakeState, inc: Incoming, send: Send, model: str, *, stream: bool) -> int:
    body, problem = _parse(inc)
    if problem is None:
        problem = _invalid(body)
    if problem is None and state.config.verify_signatures:
        problem = _signature_problem(model, get(body, "contents"))
    if problem:
        return await send_error(send, 400, envelope(400, problem))
    turn = _turn(body, model)
    script = state.queue.take(PROTOCOL, "generateContent", model, api_key(inc))
    try:
        reply = await reply_to(turn, script, lambda: "")
    except ScriptError as exc:
        return await send_error(send, 400, envelope(400, str(exc)))
    sse = inc.params().get("alt") == "sse"
    key = api_key(inc)
    err = error_instead(reply, stream)
    if err is not None:
        return await scripted_error(send, err, reply.headers, key)
    show_thoughts = get(get(get(body, "generationConfig") or {}, "thinkingConfig") or {}, "includeThoughts") is True
    response_id = state.ident("", 23)
    if not stream:
        payload = dumps(encode_response(reply, model, response_id, show_thoughts), pretty=True)
        return await send_reply(send, reply, payload, make_headers(JSON_UTF8, reply.headers))
    frames = _frames(stream_chunks(reply, model, response_id, show_thoughts), sse)
    headers = make_headers(SSE if sse else JSON_UTF8, reply.headers)
    return await stream_reply(
        send,
        reply,
        headers,
        frames,
        lambda e: _stream_error_frame(e, key, sse),
        coalesce=state.config.coalesce_stream,
    )


async def count_tokens(state: FakeState, inc: Incoming, send: Send, model: str) -> int:
    body, problem = _parse(inc)
    inner = get(body, "generateContentRequest") if body else None
    target = inner if isinstance(inner, dict) else body
    if problem is None:
        problem = _unknown(body, frozenset({"contents", "generateContentRequest"}), "") or _invalid(target)
    if problem:
        return await send_error(send, 400, envelope(400, problem))
    script = await delayed(state.queue.take(PROTOCOL, "count_tokens", model, api_key(inc)))
    if script is not None and script.error is not None:
        return await scripted_error(send, script.error, script.headers, api_key(inc))
    tokens = input_tokens(target)
    if script is not None:
        tokens = script.usage.get("input_tokens", tokens)
    payload = {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
    await send_body(send, 200, dumps(payload, pretty=True), make_headers(JSON_UTF8, script.headers if script else None))
    return 200


def _model_json(model: str, name: str, input_limit: int, output_limit: int) -> dict[str, Any]:
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": name,
        "description": f"{name} (fake)",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


async def _list_models(inc: Incoming, send: Send) -> int:
    params = inc.params()
    try:
        size = max(1, min(int(params.get("pageSize", "50")), 1000))
        start = int(params.get("pageToken") or 0)
    except ValueError:
        return await send_error(send, 400, envelope(400, "Invalid page token or page size."))
    page: dict[str, Any] = {"models": [_model_json(*m) for m in MODELS[start : start + size]]}
    if start + size < len(MODELS):
        page["nextPageToken"] = str(start + size)
    await send_body(send, 200, dumps(page, pretty=True), make_headers(JSON_UTF8, None))
    return 200


async def _get_model(send: Send, model_id: str, version: str) -> int:
    found = next((m for m in MODELS if m[0] == model_id), None)
    if found is None:
        message = f"Model is not found: models/{model_id} for api version {version}"
        return await send_error(send, 404, envelope(404, message))
    await send_body(send, 200, dumps(_model_json(*found), pretty=True), make_headers(JSON_UTF8, None))
    return 200


def _error_fields(err: ErrorSpec, key: str | None) -> tuple[int, str, str, list[Any]]:
    message = err.message if err.message is not None else MESSAGES.get(err.status, "Error")
    details: list[Any] = []
    if err.status == 429:
        delay = err.retry_after if err.retry_after is not None else 1
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay:g}s"},
        ]
    return err.status, message.replace("{api_key}", key or ""), err.type or _name(err.status), details


def _stream_error_frame(err: ErrorSpec, key: str | None, sse: bool) -> bytes:
    """The error sent instead of chunk number ``err.after``: an SSE frame, or the array's last element."""
    body = envelope(*_error_fields(err, key))
    if sse:
        return b"data: " + dumps(body) + b"\r\n\r\n"
    return (b"[" if err.after == 0 else b"\n,\r\n") + dumps(body, pretty=True) + b"\n]"


async def scripted_error(send: Send, err: ErrorSpec, extra: dict[str, str], key: str | None) -> int:
    if err.body is not None:
        await send_body(send, err.status, dumps(err.body, pretty=True), make_headers(JSON_UTF8, extra))
        return err.status
    return await send_error(send, err.status, envelope(*_error_fields(err, key)), extra)


# --------------------------------------------------------------------------- encoding


def encode_usage(reply: Reply, *, final: bool = True) -> dict[str, Any]:
    u = reply.usage
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    thoughts = min(u.reasoning_tokens, u.output_tokens)
    candidates = u.output_tokens - thoughts
    out: dict[str, Any] = {"promptTokenCount": prompt}
    if final and candidates:
        out["candidatesTokenCount"] = candidates
    out["totalTokenCount"] = prompt + (u.output_tokens if final else 0)
    if u.cache_read_tokens:
        out["cachedContentTokenCount"] = u.cache_read_tokens
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if final and thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def _call_parts(reply: Reply) -> list[dict[str, Any]]:
    parts = []
    for k, call in enumerate(reply.calls):
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.input}}
        if k == 0:
            part["thoughtSignature"] = _call_signature(call.name)
        parts.append(part)
    return parts


def _text_signature(reply: Reply) -> str | None:
    if reply.thinking is None or reply.calls or reply.text is None:
        return None
    return sign("gemini-text:" + reply.text)


def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return candidate


def encode_response(reply: Reply, model: str, response_id: str, show_thoughts: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if reply.thinking is not None and show_thoughts:
        parts.append({"text": reply.thinking, "thought": True})
    if reply.text is not None:
        part: dict[str, Any] = {"text": reply.text}
        signature = _text_signature(reply)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    parts.extend(_call_parts(reply))
    return {
        "candidates": [_candidate(parts, FINISH_REASONS.get(reply.stop_reason, "STOP"))],
        "usageMetadata": encode_usage(reply),
        "modelVersion": model,
        "responseId": response_id,
    }


def stream_chunks(reply: Reply, model: str, response_id: str, show_thoughts: bool) -> list[dict[str, Any]]:
    """Every chunk of the streamed answer; the last one has the finish reason and full usage."""
    pieces: list[list[dict[str, Any]]] = []
    if reply.thinking is not None and show_thoughts:
        pieces.extend([{"text": p, "thought": True}] for p in split_pieces(reply.thinking))
    if reply.text:
        pieces.extend([{"text": p}] for p in split_pieces(reply.text))
    if reply.calls:
        pieces.append(_call_parts(reply))
    signature = _text_signature(reply)
    if signature or not pieces or (pieces[-1] and "thought" in pieces[-1][0]):
        part: dict[str, Any] = {"text": ""}
        if signature:
            part["thoughtSignature"] = signature
        pieces.append([part])
    finish = FINISH_REASONS.get(reply.stop_reason, "STOP")
    chunks = []
    for n, parts in enumerate(pieces):
        last = n == len(pieces) - 1
        chunks.append(
            {
                "candidates": [_candidate(parts, finish if last else None)],
                "usageMetadata": encode_usage(reply, final=last),
                "modelVersion": model,
                "responseId": response_id,
            }
        )
    return chunks


def _frames(chunks: list[dict[str, Any]], sse: bool) -> list[bytes]:
    if sse:
        return [b"data: " + dumps(c) + b"\r\n\r\n" for c in chunks]
    frames = [(b"\n,\r\n" if n else b"[") + dumps(c, pretty=True) for n, c in enumerate(chunks)]
    frames[-1] += b"\n]"
    return frames
