"""Minimal ``POST /v1/messages`` passthrough proxies, one per server x client stack.

Each proxy reads the request body, parses it with orjson (as the gateway must),
forwards the original bytes to the upstream with an ``x-api-key`` header, and
answers with the upstream's status and body: whole for a plain request, chunk by
chunk as it arrives (one ASGI message / one write per chunk) when ``"stream": true``.

Environment: ``MG_CLIENT`` = httpx | httpx2 | aiohttp | pyreqwest | niquests
             ``MG_UPSTREAM`` = base URL of the upstream (default http://127.0.0.1:18001)

Servers (``run.py`` starts them all; PYTHONPATH must hold this folder):
  uvicorn --factory proxies:starlette_app --http httptools --loop uvloop --no-access-log
  uvicorn --factory proxies:starlette_lean_app ...   (Starlette routing, own streaming response)
  uvicorn --factory proxies:raw_asgi_app  ...                       (no Starlette)
  granian --interface asgi --factory proxies:starlette_app --workers 1 --loop uvloop
  python proxies.py aiohttp-web --port 18010                        (aiohttp.web server)

The client is created once per process, on the first request (its constructor
needs the running loop), with a pool of >= 1000 keep-alive connections.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import orjson

UPSTREAM = os.environ.get("MG_UPSTREAM", "http://127.0.0.1:18001").rstrip("/")
URL = UPSTREAM + "/v1/messages"
UPSTREAM_KEY = "sk-upstream-test"
POOL = 1000  # max connections to the upstream (>= benchmark concurrency)


def upstream_headers(anthropic_version: str | None) -> dict[str, str]:
    return {
        "x-api-key": UPSTREAM_KEY,
        "anthropic-version": anthropic_version or "2023-06-01",
        "content-type": "application/json",
    }


# ----------------------------------------------------------------------------- clients
# Every adapter has the same two calls:
#   await post(headers, body)   -> (status, content_type, body)
#   await stream(headers, body) -> (status, content_type, async iterator of chunks)
# The iterator releases the upstream connection when it ends or is closed.


class AiohttpClient:
    def __init__(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=POOL, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300, enable_cleanup_closed=False
        )
        self.s = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # pass bytes through untouched, no zlib work
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def post(self, headers, body):
        async with self.s.post(URL, data=body, headers=headers) as r:
            return r.status, r.headers.get("content-type", "application/json"), await r.read()

    async def stream(self, headers, body):
        r = await self.s.post(URL, data=body, headers=headers)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for c in r.content.iter_any():  # yields what has arrived, no re-buffering
                    yield c
            finally:
                r.release()

        return r.status, r.headers.get("content-type", "text/event-stream"), chunks()


class HttpxClient:
    def __init__(self, mod_name: str = "httpx") -> None:
        mod = __import__(mod_name)
        self.c = mod.AsyncClient(
            limits=mod.Limits(max_connections=POOL, max_keepalive_connections=POOL, keepalive_expiry=60),
            timeout=mod.Timeout(600, connect=10),
            trust_env=False,
        )

    async def post(self, headers, body):
        r = await self.c.post(URL, content=body, headers=headers)
        return r.status_code, r.headers.get("content-type", "application/json"), r.content

    async def stream(self, headers, body):
        r = await self.c.send(self.c.build_request("POST", URL, content=body, headers=headers), stream=True)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for c in r.aiter_raw():
                    yield c
            finally:
                await r.aclose()

        return r.status_code, r.headers.get("content-type", "text/event-stream"), chunks()


class PyreqwestClient:
    def __init__(self) -> None:
        from pyreqwest.client import ClientBuilder

        self.c = (
            ClientBuilder()
            .max_connections(None)
            .pool_max_idle_per_host(POOL)
            .pool_idle_timeout(timedelta(seconds=60))
            .connect_timeout(timedelta(seconds=10))
            .timeout(timedelta(seconds=600))
            .http1_only()
            .build()
        )

    async def post(self, headers, body):
        r = await self.c.post(URL).headers(headers).body_bytes(body).build().send()
        return r.status, r.get_header("content-type") or "application/json", bytes(await r.bytes())

    async def stream(self, headers, body):
        # the default read buffer (64 KiB) makes __aenter__ wait until 64 KiB or the end of the
        # body has arrived, i.e. it holds the whole SSE stream back: 0 passes chunks on as they come
        req = self.c.post(URL).headers(headers).body_bytes(body).streamed_read_buffer_limit(0).build_streamed()
        r = await req.__aenter__()
        reader = r.body_reader

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while (c := await reader.read_chunk()) is not None:
                    yield bytes(c)
            finally:
                await req.__aexit__(None, None, None)

        return r.status, r.get_header("content-type") or "text/event-stream", chunks()


class NiquestsClient:
    def __init__(self) -> None:
        import niquests

        self.s = niquests.AsyncSession(
            pool_connections=10, pool_maxsize=POOL, retries=0, disable_http2=True, disable_http3=True
        )
        self.s.trust_env = False

    async def post(self, headers, body):
        r = await self.s.post(URL, data=body, headers=headers)
        return r.status_code, r.headers.get("content-type", "application/json"), r.content

    async def stream(self, headers, body):
        r = await self.s.post(URL, data=body, headers=headers, stream=True)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for c in await r.iter_raw(-1):  # -1: as the chunks come
                    yield c
            finally:
                await r.close()

        return r.status_code, r.headers.get("content-type", "text/event-stream"), chunks()


CLIENTS = {
    "aiohttp": AiohttpClient,
    "httpx": HttpxClient,
    "httpx2": lambda: HttpxClient("httpx2"),
    "pyreqwest": PyreqwestClient,
    "niquests": NiquestsClient,
}
_client = None


def client():
    """The process-wide client, built on first use inside the running loop (no await: no race)."""
    global _client
    if _client is None:
        _client = CLIENTS[os.environ.get("MG_CLIENT", "aiohttp")]()
    return _client


# ----------------------------------------------------------------------------- Starlette


def starlette_app():
    from starlette.applications import Starlette
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def messages(request):
        body = await request.body()
        payload = orjson.loads(body)
        headers = upstream_headers(request.headers.get("anthropic-version"))
        if payload.get("stream"):
            status, ctype, chunks = await client().stream(headers, body)
            return StreamingResponse(chunks, status_code=status, media_type=ctype)
        status, ctype, data = await client().post(headers, body)
        return Response(data, status_code=status, media_type=ctype)

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


# ----------------------------------------------------------------------------- Starlette, lean streaming


class PassthroughStream:
    """An ASGI response that sends each upstream chunk as it comes.

    Unlike Starlette's StreamingResponse it runs no anyio task group; a plain asyncio
    task waits for ``http.disconnect`` and cancels the copy loop, so the upstream
    connection is dropped as soon as the client leaves (uvicorn silently ignores
    sends after a disconnect, so the loop alone would read the upstream to its end).
    """

    def __init__(self, chunks: AsyncIterator[bytes], status: int, content_type: str) -> None:
        self.chunks, self.status, self.content_type = chunks, status, content_type

    async def __call__(self, scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", self.content_type.encode())],
            }
        )
        copier = asyncio.current_task()
        state = {"done": False, "gone": False}

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not state["done"]:
                state["gone"] = True
                copier.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            async for c in self.chunks:
                await send({"type": "http.response.body", "body": c, "more_body": True})
            state["done"] = True
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            if not state["gone"]:
                raise  # a real cancellation, not the client leaving
        finally:
            state["done"] = True
            watcher.cancel()
            await self.chunks.aclose()


def starlette_lean_app():
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def messages(request):
        body = await request.body()
        payload = orjson.loads(body)
        headers = upstream_headers(request.headers.get("anthropic-version"))
        if payload.get("stream"):
            status, ctype, chunks = await client().stream(headers, body)
            return PassthroughStream(chunks, status, ctype)
        status, ctype, data = await client().post(headers, body)
        return Response(data, status_code=status, media_type=ctype)

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


# ----------------------------------------------------------------------------- raw ASGI


def raw_asgi_app():
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        if scope["path"] != "/v1/messages" or scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        msg = await receive()
        body = msg.get("body", b"")
        while msg.get("more_body"):
            msg = await receive()
            body += msg.get("body", b"")
        payload = orjson.loads(body)
        version = next((v.decode() for k, v in scope["headers"] if k == b"anthropic-version"), None)
        headers = upstream_headers(version)
        if payload.get("stream"):
            status, ctype, chunks = await client().stream(headers, body)
            ctype_header = [(b"content-type", ctype.encode())]
            await send({"type": "http.response.start", "status": status, "headers": ctype_header})
            try:
                async for c in chunks:
                    await send({"type": "http.response.body", "body": c, "more_body": True})
            finally:
                await chunks.aclose()
            await send({"type": "http.response.body", "body": b""})
            return
        status, ctype, data = await client().post(headers, body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


# ----------------------------------------------------------------------------- aiohttp.web


def aiohttp_web_app():
    from aiohttp import web

    async def messages(request):
        body = await request.read()
        payload = orjson.loads(body)
        headers = upstream_headers(request.headers.get("anthropic-version"))
        if payload.get("stream"):
            status, ctype, chunks = await client().stream(headers, body)
            resp = web.StreamResponse(status=status, headers={"content-type": ctype})
            await resp.prepare(request)
            try:  # write() raises once the client is gone; aclose() then drops the upstream
                async for c in chunks:
                    await resp.write(c)
            finally:
                await chunks.aclose()
            await resp.write_eof()
            return resp
        status, ctype, data = await client().post(headers, body)
        return web.Response(body=data, status=status, headers={"content-type": ctype})

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    return app


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("server", choices=["aiohttp-web"])
    p.add_argument("--port", type=int, default=18010)
    a = p.parse_args()
    import asyncio

    import uvloop
    from aiohttp import web

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"aiohttp.web proxy on 127.0.0.1:{a.port}", file=sys.stderr, flush=True)
    web.run_app(aiohttp_web_app(), host="127.0.0.1", port=a.port, access_log=None, print=None, backlog=2048)
