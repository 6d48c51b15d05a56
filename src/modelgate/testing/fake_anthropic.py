"""The Anthropic Messages API, as the fake upstream serves it.

Serves ``POST /v1/messages`` (JSON and SSE), ``POST /v1/messages/count_tokens``
and the Anthropic shape of ``GET /v1/models[/{id}]``.

Faithful details worth knowing when writing tests against it:

* auth: ``x-api-key`` or ``Authorization: Bearer``; a missing key answers 401
  "x-api-key header is required", a wrong one (with ``require_key``) "invalid x-api-key";
* ``anthropic-version`` is required (any value); ``anthropic-beta`` is recorded, never judged;
* every response carries a ``request-id`` header; error bodies are
  ``{"type":"error","error":{"type","message"},"request_id"}``;
* a stream is ``message_start`` → per block ``content_block_start`` → deltas →
  ``content_block_stop`` → ``message_delta`` (stop reason, cumulative usage) →
  ``message_stop``, with one ``ping`` right after the first ``content_block_start``
  as the real API sends it; a tool block's first ``input_json_delta`` is empty
  and a thinking block ends with a ``signature_delta``;
* thinking blocks sent back in ``messages`` must carry the signature the fake
  gave them (any change of text or signature answers 400, like the real API).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.protocols.sse import encode_frame
from modelgate.testing.http import EVENT_STREAM, JSON, Incoming, Send, make_headers, send_body
from modelgate.testing.reply import Reply, Turn, estimate_tokens, sign, split_json, split_pieces, text_of
from modelgate.testing.respond import (
    delayed,
    error_headers,
    error_instead,
    reply_to,
    send_error_body,
    send_reply,
    stream_reply,
)
from modelgate.testing.script import ErrorSpec, ScriptError

if TYPE_CHECKING:
    from modelgate.testing.fake_upstream import FakeState

PROTOCOL = "anthropic"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}

_PING = encode_frame(b'{"type":"ping"}', "ping")
_STOP = encode_frame(b'{"type":"message_stop"}', "message_stop")


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def error_body(etype: str, message: str, request_id: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id})


async def send_error(
    send: Send,
    status: int,
    message: str,
    request_id: str,
    *,
    etype: str | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    hdrs = make_headers(JSON, headers)
    hdrs.append((b"request-id", request_id.encode()))
    await send_body(send, status, error_body(etype or error_type(status), message, request_id), hdrs)
    return status


def api_key(inc: Incoming) -> str | None:
    return inc.headers.get("x-api-key") or _bearer(inc)


def _auth_problem(state: FakeState, inc: Incoming) -> str | None:
    keys = [k for k in (inc.headers.get("x-api-key"), _bearer(inc)) if k]
    if not keys:
        return "x-api-key header is required"
    required = state.config.require_key
    if required is not None and required not in keys:
        return "invalid x-api-key"
    return None


def _bearer(inc: Incoming) -> str | None:
    auth = inc.headers.get("authorization", "")
    return (auth[7:].strip() or None) if auth[:7].lower() == "bearer " else None


async def _preamble(state: FakeState, inc: Incoming, send: Send, rid: str) -> tuple[Any, int]:
    """Auth, version header and JSON parsing; returns (body, 0) or (None, status already sent)."""
    problem = _auth_problem(state, inc)
    if problem:
        return None, await send_error(send, 401, problem, rid)
    if "anthropic-version" not in inc.headers:
        return None, await send_error(send, 400, "anthropic-version: header is required", rid)
    try:
        body = orjson.loads(inc.body)
    except orjson.JSONDecodeError:
        return None, await send_error(send, 400, "There was an error parsing the body of your request.", rid)
    if not isinstance(body, dict):
        return None, await send_error(send, 400, "Request body must be a JSON object", rid)
    return body, 0


def _invalid(body: dict[str, Any], *, need_max_tokens: bool) -> str | None:
    model = body.get("model")
    if model is None:
        return "model: Field required"
    if not isinstance(model, str):
        return "model: Input should be a valid string"
    if need_max_tokens:
        mt = body.get("max_tokens")
        if mt is None:
            return "max_tokens: Field required"
        if not isinstance(mt, int) or isinstance(mt, bool):
            return "max_tokens: Input should be a valid integer"
        if mt < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    messages = body.get("messages")
    if messages is None:
        return "messages: Field required"
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        if m.get("role") not in ("user", "assistant", "system"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if not isinstance(m.get("content"), (str, list)):
            return f"messages.{i}.content: Field required"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream: Input should be a valid boolean"
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        return "stop_sequences: Input should be a valid list"
    return _thinking_problem(body, model)


#: Models documented without adaptive thinking (it arrived with Opus and Sonnet 4.6).
_BEFORE_ADAPTIVE = re.compile(r"claude-(3|(opus|sonnet|haiku)-4(-[0-5])?(-\d{8})?$)")


def _thinking_problem(body: dict[str, Any], model: str) -> str | None:
    """The documented thinking rules peers break: budgets, adaptive on older models."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind == "adaptive" and _BEFORE_ADAPTIVE.match(model):
        return f"thinking.type: 'adaptive' is not supported for model {model}; use 'enabled' with budget_tokens"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and budget >= max_tokens:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
    return None


def _bad_signature(messages: list[dict[str, Any]]) -> str | None:
    for i, m in enumerate(messages):
        content = m.get("content")
        if m.get("role") != "assistant" or not isinstance(content, list):
            continue
        for j, b in enumerate(content):
            if isinstance(b, dict) and b.get("type") == "thinking":
                thinking = b.get("thinking")
                if not isinstance(thinking, str) or b.get("signature") != sign(thinking):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    return None


def input_tokens(body: dict[str, Any]) -> int:
    return estimate_tokens([body.get("system"), body.get("messages"), body.get("tools")])


def _turn(body: dict[str, Any]) -> Turn:
    messages = body["messages"]
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    texts: list[str] = []
    results: list[str] | None = None
    content = last.get("content") if last else None
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for b in content:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "text" and isinstance(b.get("text"), str):
                texts.append(b["text"])
            elif b.get("type") == "tool_result":
                results = results if results is not None else []
                results.append(text_of(b.get("content")))
    thinking = body.get("thinking")
    return Turn(
        model=body["model"],
        user_text="\n".join(texts),
        tool_results=results,
        input_tokens=input_tokens(body),
        max_tokens=body["max_tokens"],
        stop_sequences=tuple(body.get("stop_sequences") or ()),
        auto_thinking=isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"),
    )


# --------------------------------------------------------------------------- handlers


async def messages(state: FakeState, inc: Incoming, send: Send) -> int:
    rid = state.ident("req_011C")
    body, status = await _preamble(state, inc, send, rid)
    if body is None:
        return status
    problem = _invalid(body, need_max_tokens=True)
    if problem is None and state.config.verify_signatures:
        problem = _bad_signature(body["messages"])
    if problem:
        return await send_error(send, 400, problem, rid)
    turn = _turn(body)
    script = state.queue.take(PROTOCOL, "messages", turn.model, api_key(inc))
    try:
        reply = await reply_to(turn, script, lambda: state.ident("toolu_01"))
    except ScriptError as exc:
        return await send_error(send, 400, str(exc), rid)
    stream = bool(body.get("stream"))
    err = error_instead(reply, stream)
    if err is not None:
        return await scripted_error(send, err, reply.headers, rid, api_key(inc))
    msg_id = state.ident("msg_01")
    headers = make_headers(EVENT_STREAM if stream else JSON, reply.headers)
    headers.append((b"request-id", rid.encode()))
    if not stream:
        return await send_reply(send, reply, orjson.dumps(encode_message(reply, msg_id, turn.model)), headers)
    frames = stream_frames(reply, msg_id, turn.model)
    key = api_key(inc)
    return await stream_reply(
        send,
        reply,
        headers,
        frames,
        lambda e: _stream_error_frame(e, rid, key),
        coalesce=state.config.coalesce_stream,
    )


async def count_tokens(state: FakeState, inc: Incoming, send: Send) -> int:
    rid = state.ident("req_011C")
    body, status = await _preamble(state, inc, send, rid)
    if body is None:
        return status
    problem = _invalid(body, need_max_tokens=False)
    if problem:
        return await send_error(send, 400, problem, rid)
    script = await delayed(state.queue.take(PROTOCOL, "count_tokens", body["model"], api_key(inc)))
    if script is not None and script.error is not None:
        return await scripted_error(send, script.error, script.headers, rid, api_key(inc))
    tokens = input_tokens(body)
    if script is not None:
        tokens = script.usage.get("input_tokens", tokens)
    headers = make_headers(JSON, script.headers if script else None)
    headers.append((b"request-id", rid.encode()))
    await send_body(send, 200, b'{"input_tokens":%d}' % tokens, headers)
    return 200


async def models(state: FakeState, inc: Incoming, send: Send, model_id: str | None) -> int:
    rid = state.ident("req_011C")
    problem = _auth_problem(state, inc)
    if problem:
        return await send_error(send, 401, problem, rid)
    catalog = [
        {"type": "model", "id": m, "display_name": name, "created_at": created}
        for m, name, created in state.config.anthropic_models
    ]
    headers = make_headers(JSON, None)
    headers.append((b"request-id", rid.encode()))
    if model_id is not None:
        found = next((m for m in catalog if m["id"] == model_id), None)
        if found is None:
            return await send_error(send, 404, f"model: {model_id}", rid)
        await send_body(send, 200, orjson.dumps(found), headers)
        return 200
    params = inc.params()
    try:
        limit = int(params.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return await send_error(send, 400, "limit: Input should be between 1 and 1000", rid)
    ids = [m["id"] for m in catalog]
    if "after_id" in params:
        start = ids.index(params["after_id"]) + 1 if params["after_id"] in ids else len(ids)
        page = catalog[start : start + limit]
        has_more = start + limit < len(catalog)
    elif "before_id" in params:
        end = ids.index(params["before_id"]) if params["before_id"] in ids else 0
        page = catalog[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        page, has_more = catalog[:limit], len(catalog) > limit
    payload = {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
    await send_body(send, 200, orjson.dumps(payload), headers)
    return 200


async def scripted_error(send: Send, err: ErrorSpec, extra: dict[str, str], rid: str, key: str | None) -> int:
    headers = error_headers(err, extra)
    if err.body is not None:
        hdrs = make_headers(JSON, headers)
        hdrs.append((b"request-id", rid.encode()))
        return await send_error_body(send, err, hdrs)
    etype, message = _error_fields(err, key)
    return await send_error(send, err.status, message, rid, etype=etype, headers=headers)


def _error_fields(err: ErrorSpec, key: str | None) -> tuple[str, str]:
    etype = err.type or error_type(err.status)
    message = err.message if err.message is not None else ERROR_MESSAGES.get(etype, "Error")
    return etype, message.replace("{api_key}", key or "")


def _stream_error_frame(err: ErrorSpec, rid: str, key: str | None) -> bytes:
    etype, message = _error_fields(err, key)
    return encode_frame(error_body(etype, message, rid), "error")


# --------------------------------------------------------------------------- encoding


def encode_usage(reply: Reply, *, output_tokens: int | None = None) -> dict[str, Any]:
    u = reply.usage
    return {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": u.cache_write_tokens, "ephemeral_1h_input_tokens": 0},
        "output_tokens": u.output_tokens if output_tokens is None else output_tokens,
        "service_tier": "standard",
    }


def content_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.thinking is not None:
        blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": reply.signature})
    if reply.text is not None:
        blocks.append({"type": "text", "text": reply.text})
    blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in reply.calls)
    return blocks


def encode_message(reply: Reply, msg_id: str, model: str) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(reply),
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": encode_usage(reply),
    }


def _delta(index: int, kind: bytes, key: bytes, value: str) -> bytes:
    data = b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":%s}}' % (
        index,
        kind,
        key,
        orjson.dumps(value),
    )
    return encode_frame(data, "content_block_delta")


def _start(index: int, block: dict[str, Any]) -> bytes:
    return encode_frame(
        orjson.dumps({"type": "content_block_start", "index": index, "content_block": block}), "content_block_start"
    )


def _stop(index: int) -> bytes:
    return encode_frame(b'{"type":"content_block_stop","index":%d}' % index, "content_block_stop")


def stream_frames(reply: Reply, msg_id: str, model: str) -> list[bytes]:
    """Every SSE frame of the streamed answer, in the real API's order."""
    start = {
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": encode_usage(reply, output_tokens=min(1, reply.usage.output_tokens)),
        },
    }
    frames = [encode_frame(orjson.dumps(start), "message_start")]
    index = 0

    def opened(block: dict[str, Any]) -> None:
        frames.append(_start(index, block))
        if index == 0:
            frames.append(_PING)

    if reply.thinking is not None:
        opened({"type": "thinking", "thinking": "", "signature": ""})
        frames.extend(_delta(index, b"thinking_delta", b"thinking", p) for p in split_pieces(reply.thinking))
        frames.append(_delta(index, b"signature_delta", b"signature", reply.signature or ""))
        frames.append(_stop(index))
        index += 1
    if reply.text is not None:
        opened({"type": "text", "text": ""})
        frames.extend(_delta(index, b"text_delta", b"text", p) for p in split_pieces(reply.text))
        frames.append(_stop(index))
        index += 1
    for call in reply.calls:
        opened({"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
        for piece in ["", *split_json(call.arguments)]:
            frames.append(_delta(index, b"input_json_delta", b"partial_json", piece))
        frames.append(_stop(index))
        index += 1
    if index == 0:
        frames.append(_PING)
    u = reply.usage
    usage = b'{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"output_tokens":%d}' % (
        u.input_tokens,
        u.cache_write_tokens,
        u.cache_read_tokens,
        u.output_tokens,
    )
    delta = orjson.dumps({"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence})
    frames.append(encode_frame(b'{"type":"message_delta","delta":%s,"usage":%s}' % (delta, usage), "message_delta"))
    frames.append(_STOP)
    return frames
