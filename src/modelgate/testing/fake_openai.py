"""OpenAI Chat Completions, as the fake upstream serves it.

Serves ``POST /v1/chat/completions`` (JSON and SSE) and the OpenAI shape of
``GET /v1/models[/{id}]``. Auth is ``Authorization: Bearer``; errors are
``{"error":{"message","type","param","code"}}`` and responses carry ``x-request-id``.

A stream is: a first chunk with ``delta.role`` (merged with the first tool call
header when the answer is only tool calls, as OpenAI does), ``content`` deltas,
``tool_calls`` deltas (``index``, then ``id``/``type``/``function.name`` with empty
``arguments`` in the first fragment, the arguments in several pieces), a last
choice chunk with an empty delta and ``finish_reason``; with
``stream_options.include_usage`` every chunk has ``"usage": null`` and one more
chunk with ``"choices": []`` carries the usage; then ``data: [DONE]``.

Quirks (server-wide ``--quirks`` or per script) emulate sloppy OpenAI-compatible
servers (vLLM, Ollama, llama.cpp):

* ``no_usage``: no usage anywhere (no ``usage`` key, no usage chunk);
* ``null_choices``: the usage chunk says ``"choices": null``;
* ``reasoning_content``: thinking text in ``delta.reasoning_content`` (and
  ``message.reasoning_content``); without it reasoning only shows in
  ``completion_tokens_details.reasoning_tokens``, as with OpenAI;
* ``usage_on_last_chunk``: usage rides on the ``finish_reason`` chunk instead of a
  chunk of its own (sent even without ``include_usage``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from modelgate.protocols.sse import encode_frame
from modelgate.testing.http import EVENT_STREAM, JSON, Incoming, Send, make_headers, send_body
from modelgate.testing.reply import Reply, Turn, estimate_tokens, split_json, split_pieces, text_of
from modelgate.testing.respond import error_headers, error_instead, reply_to, send_error_body, send_reply, stream_reply
from modelgate.testing.script import ErrorSpec, ScriptError

if TYPE_CHECKING:
    from modelgate.testing.fake_upstream import FakeState

PROTOCOL = "openai"
CREATED = 1_735_689_600  # a fixed ``created`` keeps answers byte-for-byte reproducible
FINGERPRINT = "fp_fake0000"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
#: status → (type, code, default message)
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("request_forbidden", None, "You are not allowed to use this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    413: ("invalid_request_error", None, "Request too large."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    529: ("server_error", None, "The server is overloaded or not ready yet."),
}
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_DONE = b"data: [DONE]\n\n"


def _defaults(status: int) -> tuple[str, str | None, str]:
    return ERRORS.get(status) or (
        ("invalid_request_error", None, "Invalid request.") if status < 500 else ("server_error", None, "Server error.")
    )


def error_body(message: str, etype: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": etype, "param": param, "code": code}})


async def send_error(
    send: Send,
    status: int,
    message: str,
    rid: str,
    *,
    etype: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    hdrs = make_headers(JSON, headers)
    hdrs.append((b"x-request-id", rid.encode()))
    await send_body(send, status, error_body(message, etype or _defaults(status)[0], code, param), hdrs)
    return status


def api_key(inc: Incoming) -> str | None:
    auth = inc.headers.get("authorization", "")
    return (auth[7:].strip() or None) if auth[:7].lower() == "bearer " else None


def mask(key: str) -> str:
    return key[:3] + "*" * (len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)


async def _authenticate(state: FakeState, inc: Incoming, send: Send, rid: str) -> int:
    key = api_key(inc)
    if not key:
        return await send_error(send, 401, _NO_KEY, rid)
    required = state.config.require_key
    if required is not None and key != required:
        message = (
            f"Incorrect API key provided: {mask(key)}. "
            "You can find your API key at https://platform.openai.com/account/api-keys."
        )
        return await send_error(send, 401, message, rid, code="invalid_api_key")
    return 0


def _invalid(body: Any) -> tuple[str, str | None, str | None] | None:
    """(message, param, code) of the first problem, as OpenAI words it."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request.", None, None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter", None, None
    messages = body.get("messages")
    if messages is None:
        return "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
    if not isinstance(messages, list):
        return "Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type"
    if not messages:
        return (
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            return (
                f"Missing required parameter: 'messages[{i}].role'.",
                f"messages[{i}].role",
                "missing_required_parameter",
            )
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        return "Invalid type for 'stream': expected a boolean.", "stream", "invalid_type"
    return None


def _turn(body: dict[str, Any]) -> Turn:
    messages = body["messages"]
    i = len(messages)
    while i > 0 and messages[i - 1].get("role") != "assistant":
        i -= 1
    results = [text_of(m.get("content")) for m in messages[i:] if m.get("role") == "tool"]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    stop = body.get("stop")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return Turn(
        model=body["model"],
        user_text=text_of(last_user.get("content")) if last_user else "",
        tool_results=results or None,
        input_tokens=estimate_tokens([messages, body.get("tools")]),
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
        stop_sequences=(stop,) if isinstance(stop, str) else tuple(s for s in stop or () if isinstance(s, str)),
    )


# --------------------------------------------------------------------------- handlers


async def chat_completions(state: FakeState, inc: Incoming, send: Send) -> int:
    rid = state.ident("req_")
    status = await _authenticate(state, inc, send, rid)
    if status:
        return status
    try:
        body = orjson.loads(inc.body)
    except orjson.JSONDecodeError:
        body = None
    problem = _invalid(body)
    if problem:
        message, param, code = problem
        return await send_error(send, 400, message, rid, param=param, code=code)
    turn = _turn(body)
    script = state.queue.take(PROTOCOL, "chat.completions", turn.model, api_key(inc))
    try:
        reply = await reply_to(turn, script, lambda: state.ident("call_"))
    except ScriptError as exc:
        return await send_error(send, 400, str(exc), rid)
    reply.quirks = reply.quirks | state.config.quirks
    stream = bool(body.get("stream"))
    err = error_instead(reply, stream)
    if err is not None:
        return await scripted_error(send, err, reply.headers, rid, api_key(inc))
    completion_id = state.ident("chatcmpl-")
    headers = make_headers(EVENT_STREAM if stream else JSON, reply.headers)
    headers.append((b"x-request-id", rid.encode()))
    if not stream:
        return await send_reply(send, reply, orjson.dumps(encode_completion(reply, completion_id, turn.model)), headers)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    frames = stream_frames(reply, completion_id, turn.model, include_usage)
    key = api_key(inc)
    return await stream_reply(
        send, reply, headers, frames, lambda e: _stream_error_frame(e, key), coalesce=state.config.coalesce_stream
    )


async def models(state: FakeState, inc: Incoming, send: Send, model_id: str | None) -> int:
    rid = state.ident("req_")
    status = await _authenticate(state, inc, send, rid)
    if status:
        return status
    catalog = [
        {"id": m, "object": "model", "created": created, "owned_by": owner}
        for m, created, owner in state.config.openai_models
    ]
    headers = make_headers(JSON, None)
    headers.append((b"x-request-id", rid.encode()))
    if model_id is None:
        await send_body(send, 200, orjson.dumps({"object": "list", "data": catalog}), headers)
        return 200
    found = next((m for m in catalog if m["id"] == model_id), None)
    if found is None:
        message = f"The model '{model_id}' does not exist"
        return await send_error(send, 404, message, rid, param="model", code="model_not_found")
    await send_body(send, 200, orjson.dumps(found), headers)
    return 200


def _error_fields(err: ErrorSpec, key: str | None) -> tuple[str, str | None, str]:
    etype, code, message = _defaults(err.status)
    if err.type is not None:
        etype = err.type
    if err.message is not None:
        message = err.message.replace("{api_key}", key or "")
    return etype, code, message


async def scripted_error(send: Send, err: ErrorSpec, extra: dict[str, str], rid: str, key: str | None) -> int:
    headers = error_headers(err, extra)
    if err.body is not None:
        hdrs = make_headers(JSON, headers)
        hdrs.append((b"x-request-id", rid.encode()))
        return await send_error_body(send, err, hdrs)
    etype, code, message = _error_fields(err, key)
    return await send_error(send, err.status, message, rid, etype=etype, code=code, headers=headers)


def _stream_error_frame(err: ErrorSpec, key: str | None) -> bytes:
    etype, code, message = _error_fields(err, key)
    return encode_frame(error_body(message, etype, code))


# --------------------------------------------------------------------------- encoding


def encode_usage(reply: Reply) -> dict[str, Any]:
    u = reply.usage
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def encode_completion(reply: Reply, completion_id: str, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    if reply.thinking is not None and "reasoning_content" in reply.quirks:
        message["reasoning_content"] = reply.thinking
    if reply.calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.calls
        ]
    out: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": FINISH_REASONS[reply.stop_reason]}
        ],
    }
    if "no_usage" not in reply.quirks:
        out["usage"] = encode_usage(reply)
    out["service_tier"] = "default"
    out["system_fingerprint"] = FINGERPRINT
    return out


def stream_frames(reply: Reply, completion_id: str, model: str, include_usage: bool) -> list[bytes]:
    """Every ``data:`` line of the streamed answer, ``[DONE]`` included."""
    quirks = reply.quirks
    usage_field = include_usage and not quirks & {"no_usage", "usage_on_last_chunk"}
    head = b'{"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,' % (
        completion_id.encode(),
        CREATED,
        orjson.dumps(model),
    )
    head += b'"service_tier":"default","system_fingerprint":"%s","choices":[' % FINGERPRINT.encode()
    tail = b'],"usage":null}' if usage_field else b"]}"

    def chunk(delta: dict[str, Any]) -> bytes:
        choice = b'{"index":0,"delta":%s,"logprobs":null,"finish_reason":null}' % orjson.dumps(delta)
        return b"data: " + head + choice + tail + b"\n\n"

    frames: list[bytes] = []
    calls = reply.calls
    reasoning = reply.thinking if "reasoning_content" in quirks else None
    tool_only = reply.text is None and reasoning is None and calls
    if not tool_only:
        frames.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    if reasoning:
        frames.extend(chunk({"reasoning_content": p}) for p in split_pieces(reasoning))
    if reply.text:
        frames.extend(chunk({"content": p}) for p in split_pieces(reply.text))
    for k, call in enumerate(calls):
        header = {"index": k, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        if tool_only and k == 0:
            frames.append(chunk({"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}))
        else:
            frames.append(chunk({"tool_calls": [header]}))
        frames.extend(
            chunk({"tool_calls": [{"index": k, "function": {"arguments": p}}]}) for p in split_json(call.arguments)
        )
    finish = b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"%s"}' % FINISH_REASONS[reply.stop_reason].encode()
    usage = orjson.dumps(encode_usage(reply))
    if "usage_on_last_chunk" in quirks and "no_usage" not in quirks:
        frames.append(b"data: " + head + finish + b'],"usage":' + usage + b"}\n\n")
    else:
        frames.append(b"data: " + head + finish + tail + b"\n\n")
    if usage_field:
        choices = b"null" if "null_choices" in quirks else b"[]"
        empty = head[: -len(b'"choices":[')] + b'"choices":' + choices + b',"usage":' + usage + b"}"
        frames.append(b"data: " + empty + b"\n\n")
    frames.append(_DONE)
    return frames
