"""A fast mock of the Anthropic Messages API for the stack benchmark.

Raw uvloop protocol, hand-rolled HTTP/1.1 parsing, precomputed responses, so
that it is never the bottleneck (check: ``run.py`` also measures it directly).

* ``POST /v1/messages`` -> 200 ``application/json`` message (~550 bytes).
* If the body contains ``"stream":true`` -> 200 ``text/event-stream`` with 16 SSE
  events (message_start, ping, content_block_start, 10 x content_block_delta,
  content_block_stop, message_delta, message_stop), chunked encoding, each event
  written with its own ``transport.write`` (own send()).
* If the body also contains ``pace-<N>ms`` the events are spaced N ms apart
  (used by the flush check and the paced-stream run).
* A request without ``x-api-key`` gets 401 (proves the proxy sets it).
* ``GET /_stats`` -> {"connections": accepted, "requests": served, "paced_aborted": paced
  streams whose connection the proxy closed before the end} (the runner checks that
  each client pools its connections and drops the upstream when its client leaves).

Usage: python mock_upstream.py [--port 18001]
"""

from __future__ import annotations

import argparse
import asyncio
import re

import orjson

MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hello! The capital of France is Paris. Anything else?"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 212, "output_tokens": 18, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
}
JSON_BODY = orjson.dumps(MESSAGE)


def _sse(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _events() -> list[bytes]:
    start = dict(MESSAGE, content=[], stop_reason=None, usage={"input_tokens": 212, "output_tokens": 1})
    ev = [
        _sse("message_start", {"type": "message_start", "message": start}),
        _sse("ping", {"type": "ping"}),
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for word in ["Hello!", "The", "capital", "of", "France", "is", "Paris.", "Anything", "else", "I"]:
        ev.append(
            _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word + " "}},
            )
        )
    ev += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 18},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return ev


EVENTS = _events()
SSE_BODY = b"".join(EVENTS)  # what a client must receive after de-chunking
CHUNKS = [b"%x\r\n%s\r\n" % (len(e), e) for e in EVENTS]
CHUNKS[-1] += b"0\r\n\r\n"

JSON_RESP = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_mock\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(JSON_BODY), JSON_BODY)
)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
    b"request-id: req_mock\r\ntransfer-encoding: chunked\r\n\r\n"
)
ERR = b'{"type":"error","error":{"type":"authentication_error","message":"missing x-api-key"}}'
UNAUTH = b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(ERR),
    ERR,
)
PACE = re.compile(rb"pace-(\d+)ms")
STATS = {"connections": 0, "requests": 0, "paced_aborted": 0}


class MockProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        STATS["connections"] += 1

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            i = head.find(b"\r\ncontent-length:")
            n = 0
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                n = int(head[i + 17 : j if j > 0 else len(head)])
            if len(self.buf) < end + 4 + n:
                return
            body = self.buf[end + 4 : end + 4 + n]
            self.buf = self.buf[end + 4 + n :]
            self.respond(head, body)

    def respond(self, head, body):
        t = self.t
        STATS["requests"] += 1
        if head.startswith(b"get /_stats"):
            b = orjson.dumps(STATS)
            t.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(b), b))
        elif b"\r\nx-api-key:" not in head:
            t.write(UNAUTH)
        elif b'"stream":true' not in body:
            t.write(JSON_RESP)
        else:
            m = PACE.search(body)
            if m:
                self.task = asyncio.ensure_future(self.paced(int(m.group(1)) / 1000))
                return
            t.write(SSE_HEAD)
            for c in CHUNKS:
                t.write(c)

    async def paced(self, gap):
        self.t.write(SSE_HEAD + CHUNKS[0])
        for c in CHUNKS[1:]:
            await asyncio.sleep(gap)
            if self.t.is_closing():
                STATS["paced_aborted"] += 1
                return
            self.t.write(c)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"mock upstream on 127.0.0.1:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=18001)
    a = p.parse_args()
    import uvloop

    uvloop.run(main(a.port))
