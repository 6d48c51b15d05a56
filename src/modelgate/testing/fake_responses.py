"""The OpenAI Responses API, as the fake upstream serves it.

Serves ``POST /v1/responses`` (JSON and SSE) and ``POST /v1/responses/compact``, with the same
scripts, directives and deterministic replies as the other protocols (scripts match
``{"protocol": "openai", "endpoint": "responses"}``; ``responses.compact`` for compaction).
Auth is ``Authorization: Bearer``; errors are OpenAI's ``{"error": {...}}`` with ``x-request-id``.

Faithful details worth knowing when writing tests against it:

* like OpenAI, it refuses parameters it does not know (``Unknown parameter: 'x'.``),
  ``max_output_tokens`` below 16, and ``previous_response_id`` (nothing is stored, as with
  ``store: false``: "Previous response with id '…' not found.");
* the answer: a ``reasoning`` item when the script has thinking or the request asks for
  ``reasoning.effort`` (its ``summary`` holds the text only with ``reasoning.summary``, its
  ``encrypted_content`` only with ``include: ["reasoning.encrypted_content"]``), a ``message``
  item, then one ``function_call`` item per tool call (``custom_tool_call`` for the request's
  custom tools); ``max_tokens`` → ``status: "incomplete"``, ``incomplete_details.reason``
  ``max_output_tokens``; a refusal → a ``refusal`` content part;
* a stream is ``response.created`` → ``response.in_progress`` → per item
  ``response.output_item.added`` → (``response.reasoning_summary_part.added`` → summary text
  deltas → ``.done`` → part ``.done``) / (``response.content_part.added`` →
  ``response.output_text.delta``… → ``.done`` → ``response.content_part.done``) /
  (``response.function_call_arguments.delta``… → ``.done``) → ``response.output_item.done`` →
  ``response.completed`` (or ``response.incomplete``), every event with an increasing
  ``sequence_number``; an error after N events is a ``response.failed`` event;
* with ``verify_signatures`` on, a reasoning item sent back must carry the
  ``encrypted_content`` the fake gave it (400 otherwise, as OpenAI cannot decrypt it).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.testing import fake_openai
from modelgate.testing.http import EVENT_STREAM, JSON, Incoming, Send, make_headers, send_body
from modelgate.testing.reply import Reply, Turn, count_words, estimate_tokens, sign, split_json, split_pieces, text_of
from modelgate.testing.respond import delayed, error_instead, reply_to, send_reply, stream_reply
from modelgate.testing.script import ErrorSpec, ScriptError

if TYPE_CHECKING:
    from modelgate.testing.fake_upstream import FakeState

PROTOCOL = "openai"
CREATED = fake_openai.CREATED
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)
#: Request parameters OpenAI knows (and Codex's ``client_metadata``); anything else is refused.
KNOWN_PARAMS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text",
        "max_output_tokens", "max_tool_calls", "temperature", "top_p", "top_logprobs", "truncation", "store",
        "stream", "stream_options", "include", "metadata", "user", "safety_identifier", "prompt_cache_key",
        "prompt_cache_retention", "service_tier", "previous_response_id", "conversation", "prompt", "background",
        "context_management", "client_metadata",
    }
)  # fmt: skip
_ENCRYPTED_PREFIX = "gAAAAB"
_OUTPUT_ITEMS = ("message", "function_call", "custom_tool_call", "reasoning")
_TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def _problem(body: Any) -> tuple[str, str | None, str | None] | None:
    """(message, param, code) of the first problem, as OpenAI words it."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request.", None, None
    unknown = sorted(set(body) - KNOWN_PARAMS)
    if unknown:
        return f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "Missing required parameter: 'model'.", "model", "missing_required_parameter"
    if body.get("previous_response_id"):
        prev = body["previous_response_id"]
        return f"Previous response with id '{prev}' not found.", "previous_response_id", "previous_response_not_found"
    raw = body.get("input")
    if raw is None:
        return "Missing required parameter: 'input'.", "input", "missing_required_parameter"
    if not isinstance(raw, (str, list)) or (isinstance(raw, list) and not all(isinstance(i, dict) for i in raw)):
        return "Invalid type for 'input': expected a string or an array of input items.", "input", "invalid_type"
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 16):
        message = (
            "Invalid 'max_output_tokens': integer below minimum value. "
            f"Expected a value >= 16, but got {limit} instead."
        )
        return message, "max_output_tokens", "integer_below_min_value"
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        return "Invalid type for 'stream': expected a boolean.", "stream", "invalid_type"
    return None


def encrypt(thinking: str) -> str:
    """The fake's ``encrypted_content``: opaque-looking, but it carries the text and its signature."""
    payload = orjson.dumps({"t": thinking, "s": sign(thinking)})
    return _ENCRYPTED_PREFIX + base64.urlsafe_b64encode(payload).decode()


def _decrypts(sealed: Any) -> bool:
    if not isinstance(sealed, str) or not sealed.startswith(_ENCRYPTED_PREFIX):
        return False
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(sealed[len(_ENCRYPTED_PREFIX) :]))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return False
    return isinstance(payload, dict) and isinstance(payload.get("t"), str) and payload.get("s") == sign(payload["t"])


def _bad_reasoning(items: list[dict[str, Any]]) -> str | None:
    for i, item in enumerate(items):
        if item.get("type") == "reasoning" and not _decrypts(item.get("encrypted_content")):
            return f"The encrypted content for item input[{i}] could not be verified."
    return None


def _turn(body: dict[str, Any]) -> Turn:
    """Texts are taken from parts of any type (``input_text``, ``output_text`` …)."""
    raw = body["input"]
    items: list[dict[str, Any]] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    results: list[str] | None = None
    i = len(items)
    while i > 0 and items[i - 1].get("type") in _TOOL_OUTPUTS:
        i -= 1
    if i < len(items):
        results = [text_of(item.get("output"), part_type=None) for item in items[i:]]
    last_user = next((m for m in reversed(items) if m.get("role") == "user"), None)
    reasoning = _object(body.get("reasoning"))
    limit = body.get("max_output_tokens")
    return Turn(
        model=body["model"],
        user_text=text_of(last_user.get("content"), part_type=None) if last_user else "",
        tool_results=results,
        input_tokens=estimate_tokens([body.get("instructions"), raw, body.get("tools")]),
        max_tokens=limit if isinstance(limit, int) else None,
        auto_thinking=reasoning.get("effort") not in (None, "none"),
    )


# --------------------------------------------------------------------------- handlers


async def _authenticate(state: FakeState, inc: Incoming, send: Send, rid: str) -> int:
    key = fake_openai.api_key(inc)
    if not key:
        return await fake_openai.send_error(send, 401, _NO_KEY, rid)
    required = state.config.require_key
    if required is not None and key != required:
        message = f"Incorrect API key provided: {fake_openai.mask(key)}."
        return await fake_openai.send_error(send, 401, message, rid, code="invalid_api_key")
    return 0


async def _body(state: FakeState, inc: Incoming, send: Send, rid: str) -> tuple[Any, int]:
    status = await _authenticate(state, inc, send, rid)
    if status:
        return None, status
    try:
        body = orjson.loads(inc.body)
    except orjson.JSONDecodeError:
        body = None
    problem = _problem(body)
    if problem is None and state.config.verify_signatures and isinstance(body["input"], list):
        message = _bad_reasoning(body["input"])
        problem = (message, "input", "invalid_encrypted_content") if message else None
    if problem:
        message, param, code = problem
        return None, await fake_openai.send_error(send, 400, message, rid, param=param, code=code)
    return body, 0


async def responses(state: FakeState, inc: Incoming, send: Send) -> int:
    rid = state.ident("req_")
    body, status = await _body(state, inc, send, rid)
    if body is None:
        return status
    turn = _turn(body)
    script = state.queue.take(PROTOCOL, "responses", turn.model, fake_openai.api_key(inc))
    try:
        reply = await reply_to(turn, script, lambda: state.ident("call_"))
    except ScriptError as exc:
        return await fake_openai.send_error(send, 400, str(exc), rid)
    stream = bool(body.get("stream"))
    key = fake_openai.api_key(inc)
    err = error_instead(reply, stream)
    if err is not None:
        return await fake_openai.scripted_error(send, err, reply.headers, rid, key)
    response_id = state.ident("resp_", 48)
    headers = make_headers(EVENT_STREAM if stream else JSON, reply.headers)
    headers.append((b"x-request-id", rid.encode()))
    if not stream:
        return await send_reply(send, reply, orjson.dumps(encode_response(reply, body, response_id)), headers)
    frames = stream_frames(reply, body, response_id)
    return await stream_reply(
        send,
        reply,
        headers,
        frames,
        lambda e: failed_frame(e, body, response_id, key),
        coalesce=state.config.coalesce_stream,
    )


async def compact(state: FakeState, inc: Incoming, send: Send) -> int:
    rid = state.ident("req_")
    body, status = await _body(state, inc, send, rid)
    if body is None:
        return status
    script = await delayed(state.queue.take(PROTOCOL, "responses.compact", body["model"], fake_openai.api_key(inc)))
    if script is not None and script.error is not None:
        return await fake_openai.scripted_error(send, script.error, script.headers, rid, fake_openai.api_key(inc))
    raw = body["input"]
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    kept = [
        {"type": "message", **m, "content": [{"type": "input_text", "text": m["content"]}]}
        if isinstance(m.get("content"), str)
        else {"type": "message", **m}
        for m in items
        if m.get("role") == "user"
    ]
    summary = f"Compacted {len(items)} items."
    kept.append({"id": state.ident("cmp_", 48), "type": "compaction", "encrypted_content": encrypt(summary)})
    usage: dict[str, Any] = {
        "input_tokens": estimate_tokens([body.get("instructions"), raw]),
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": count_words(summary),
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    payload = {"id": state.ident("resp_", 48), "object": "response.compaction", "created_at": CREATED}
    payload.update(output=kept, usage=usage)
    headers = make_headers(JSON, script.headers if script else None)
    headers.append((b"x-request-id", rid.encode()))
    await send_body(send, 200, orjson.dumps(payload), headers)
    return 200


# --------------------------------------------------------------------------- encoding


def encode_usage(reply: Reply) -> dict[str, Any]:
    u = reply.usage
    total_input = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {
        "input_tokens": total_input,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": total_input + u.output_tokens,
    }


def _shell(body: dict[str, Any], response_id: str, status: str) -> dict[str, Any]:
    reasoning = _object(body.get("reasoning"))
    text = _object(body.get("text"))
    return {
        "id": response_id,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _custom_tools(body: dict[str, Any]) -> set[str]:
    return {t["name"] for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "custom"}


def output_items(reply: Reply, body: dict[str, Any], response_id: str) -> list[dict[str, Any]]:
    """The complete output items of the answer, in order."""
    base = response_id.removeprefix("resp_")
    items: list[dict[str, Any]] = []
    if reply.thinking is not None:
        reasoning = _object(body.get("reasoning"))
        item: dict[str, Any] = {"id": f"rs_{base}0", "type": "reasoning", "summary": []}
        if reasoning.get("summary"):
            item["summary"] = [{"type": "summary_text", "text": reply.thinking}]
        if "reasoning.encrypted_content" in (body.get("include") or ()):
            item["encrypted_content"] = encrypt(reply.thinking)
        items.append(item)
    if reply.text is not None:
        part: dict[str, Any] = {"type": "output_text", "annotations": [], "logprobs": [], "text": reply.text}
        if reply.stop_reason == "refusal":
            part = {"type": "refusal", "refusal": reply.text}
        status = "incomplete" if reply.stop_reason == "max_tokens" else "completed"
        items.append(
            {"id": f"msg_{base}1", "type": "message", "status": status, "content": [part], "role": "assistant"}
        )
    custom = _custom_tools(body)
    for k, call in enumerate(reply.calls):
        if call.name in custom:
            text = call.input.get("input") if isinstance(call.input.get("input"), str) else call.arguments
            items.append(
                {"id": f"ctc_{base}{k + 2}", "type": "custom_tool_call", "status": "completed", "call_id": call.id}
                | {"name": call.name, "input": text}
            )
        else:
            items.append(
                {"id": f"fc_{base}{k + 2}", "type": "function_call", "status": "completed", "arguments": call.arguments}
                | {"call_id": call.id, "name": call.name}
            )
    return items


def _status(reply: Reply) -> tuple[str, dict[str, Any] | None]:
    if reply.stop_reason == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    return "completed", None


def encode_response(reply: Reply, body: dict[str, Any], response_id: str) -> dict[str, Any]:
    status, incomplete = _status(reply)
    out = _shell(body, response_id, status)
    out["incomplete_details"] = incomplete
    out["output"] = output_items(reply, body, response_id)
    out["usage"] = encode_usage(reply)
    return out


def _frame(kind: str, seq: int, fields: dict[str, Any]) -> bytes:
    data = orjson.dumps({"type": kind, "sequence_number": seq, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def stream_frames(reply: Reply, body: dict[str, Any], response_id: str) -> list[bytes]:
    """Every event of the streamed answer, in OpenAI's order."""
    frames: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        frames.append(_frame(kind, len(frames), fields))

    shell = _shell(body, response_id, "in_progress")
    emit("response.created", response=shell)
    emit("response.in_progress", response=shell)
    items = output_items(reply, body, response_id)
    for index, item in enumerate(items):
        ident, kind = item["id"], item["type"]
        if kind == "reasoning":
            emit("response.output_item.added", output_index=index, item={"id": ident, "type": kind, "summary": []})
            for s, part in enumerate(item["summary"]):
                at = {"item_id": ident, "output_index": index, "summary_index": s}
                emit("response.reasoning_summary_part.added", **at, part={"type": "summary_text", "text": ""})
                for piece in split_pieces(part["text"]):
                    emit("response.reasoning_summary_text.delta", **at, delta=piece)
                emit("response.reasoning_summary_text.done", **at, text=part["text"])
                emit("response.reasoning_summary_part.done", **at, part=part)
        elif kind == "message":
            emit(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            part = item["content"][0]
            at = {"item_id": ident, "output_index": index, "content_index": 0}
            if part["type"] == "refusal":
                emit("response.content_part.added", **at, part={"type": "refusal", "refusal": ""})
                for piece in split_pieces(part["refusal"]):
                    emit("response.refusal.delta", **at, delta=piece)
                emit("response.refusal.done", **at, refusal=part["refusal"])
            else:
                emit("response.content_part.added", **at, part={**part, "text": ""})
                for piece in split_pieces(part["text"]):
                    emit("response.output_text.delta", **at, delta=piece, logprobs=[])
                emit("response.output_text.done", **at, text=part["text"], logprobs=[])
            emit("response.content_part.done", **at, part=part)
        elif kind == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in split_json(item["arguments"]):
                emit("response.function_call_arguments.delta", item_id=ident, output_index=index, delta=piece)
            emit(
                "response.function_call_arguments.done", item_id=ident, output_index=index, arguments=item["arguments"]
            )
        else:
            emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "input": ""})
            for piece in split_json(item["input"]):
                emit("response.custom_tool_call_input.delta", item_id=ident, output_index=index, delta=piece)
            emit("response.custom_tool_call_input.done", item_id=ident, output_index=index, input=item["input"])
        emit("response.output_item.done", output_index=index, item=item)
    final = encode_response(reply, body, response_id)
    emit("response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final)
    return frames


def failed_frame(err: ErrorSpec, body: dict[str, Any], response_id: str, key: str | None) -> bytes:
    """The ``response.failed`` event sent instead of event number ``err.after``."""
    _, _, message = fake_openai.ERRORS.get(err.status) or (None, None, "Server error.")
    if err.message is not None:
        message = err.message.replace("{api_key}", key or "")
    code = err.type or {429: "rate_limit_exceeded", 400: "invalid_prompt"}.get(err.status, "server_error")
    response = _shell(body, response_id, "failed")
    response["error"] = {"code": code, "message": message}
    return _frame("response.failed", err.after or 0, {"response": response})
