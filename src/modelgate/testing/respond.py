"""The steps every protocol of the fake upstream takes the same way, between its own parsing
and its own encoding: which script answers (a queued one, else the directives in the user's
text), its delay, the reply, and sending that reply as one body or as an event stream with
the script's stall, break and in-stream error. Kept here so that the four emulators cannot
drift apart in how they honour a script.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

from modelgate.testing.http import Headers, Send, retry_after, send_body, send_stream
from modelgate.testing.reply import Reply, Turn, build_reply
from modelgate.testing.script import ErrorSpec, Script, parse_directives


async def delayed(script: Script | None) -> Script | None:
    """``script``, once its ``delay`` (a slow upstream) has passed."""
    if script is not None and script.delay:
        await asyncio.sleep(script.delay)
    return script


async def reply_to(turn: Turn, queued: Script | None, new_tool_id: Callable[[], str]) -> Reply:
    """The reply to ``turn``: the queued script wins, else the directives in the user's text
    (never after tool results: a prompt asking for a tool would loop). Raises
    :class:`~modelgate.testing.script.ScriptError` for a malformed directive (a 400)."""
    script, stripped = queued, turn.user_text
    if turn.tool_results is None:
        directed, stripped = parse_directives(turn.user_text)
        script = script or directed
    return build_reply(turn, await delayed(script), stripped, new_tool_id)


def error_instead(reply: Reply, stream: bool) -> ErrorSpec | None:
    """The scripted error that answers instead of the reply, if any (an error ``after`` N
    events is sent inside a stream instead)."""
    err = reply.error
    return err if err is not None and not (stream and err.after is not None) else None


def error_headers(err: ErrorSpec, extra: dict[str, str]) -> dict[str, str]:
    """A scripted error's headers: the script's, and ``retry-after`` when the error has one."""
    headers = dict(extra)
    retry = retry_after(err.status, err.retry_after)
    if retry is not None:
        headers["retry-after"] = retry
    return headers


async def send_error_body(send: Send, err: ErrorSpec, headers: Headers) -> int:
    """A scripted error whose ``body`` replaces the protocol's envelope, sent as compact JSON."""
    await send_body(send, err.status, orjson.dumps(err.body), headers)
    return err.status


async def send_reply(send: Send, reply: Reply, payload: bytes, headers: Headers) -> int:
    """A non-streamed answer (cut in half when the script breaks the connection or ends it
    early; the script's ``body`` instead, when it has one)."""
    if reply.body is not None:
        return await _send_raw(send, reply.body, headers)
    if reply.end_after is not None:
        payload = payload[: len(payload) // 2]
    await send_body(send, 200, payload, headers, break_body=reply.break_after is not None)
    return 200


async def _send_raw(send: Send, body: str, headers: Headers) -> int:
    """The script's ``body``, as a 200 (``text/html`` when it looks like a page)."""
    if body.lstrip().startswith("<"):
        headers = [(b"content-type", b"text/html; charset=utf-8"), *(h for h in headers if h[0] != b"content-type")]
    await send_body(send, 200, body.encode(), headers)
    return 200


async def stream_reply(
    send: Send,
    reply: Reply,
    headers: Headers,
    frames: list[bytes],
    error_frame: Callable[[ErrorSpec], bytes],
    *,
    coalesce: bool,
) -> int:
    """A streamed answer, with the script's stall, break, early end and ``error_frame`` after
    N events (the script's ``body`` instead, when it has one)."""
    if reply.body is not None:
        return await _send_raw(send, reply.body, headers)
    if reply.end_after is not None:
        frames = frames[: reply.end_after]
    err = reply.error
    await send_stream(
        send,
        headers,
        frames,
        stall=reply.stall,
        break_after=reply.break_after,
        error_after=err.after if err is not None else None,
        error_frame=error_frame(err) if err is not None else b"",
        coalesce=coalesce,
    )
    return 200
