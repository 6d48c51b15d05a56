"""The shared upstream HTTP client (``providers/http.py``) against raw servers on 127.0.0.1:
bodies whole and as they arrive, every transport failure as a typed error, the bytes that
go on the wire, and no cookie jar."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from modelgate.errors import GatewayError, InvalidRequest, UpstreamTimeout, UpstreamUnavailable
from modelgate.providers.http import HttpClient, Timeouts, UpstreamResponse, _drain, transport_error
from modelgate.testing.gateway_runner import free_port
from tests.providers.conftest import CHUNKED_200, LAST_CHUNK, RawRequest, chunk, http_response

QUICK = Timeouts(connect=1.0, read=1.0)


async def wait_for_broken(resp: UpstreamResponse) -> None:
    """Until aiohttp has seen the peer go (its error set on the body), so that the next read
    meets data and error together — the case ``_drain`` exists for."""
    content = resp._resp.content
    async with asyncio.timeout(1.0):
        while content.exception() is None:
            await asyncio.sleep(0.002)


# ----------------------------------------------------------------------------- bodies


async def test_read_returns_the_whole_body_sent_in_pieces(raw_server, http_client: HttpClient) -> None:
    body = b'{"id":"msg_1","content":[{"type":"text","text":"h\xc3\xa9llo"}]}'

    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = http_response(200, [("Content-Type", "application/json"), ("Request-Id", "req_9")], body)
        for part in (head[: -len(body)], body[:10], body[10:]):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)

    server = await raw_server(handler)
    resp = await http_client.post(server.url + "/v1/messages", b"{}", {}, QUICK, "anth")
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["request-id"] == resp.headers["REQUEST-ID"] == "req_9"
    assert await resp.read() == body


async def test_iter_chunks_yields_the_body_as_it_arrives(raw_server, http_client: HttpClient) -> None:
    go = asyncio.Event()

    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_200 + chunk(b"data: first\n\n"))
        await writer.drain()
        await go.wait()  # the client must have the first chunk before the second exists
        writer.write(chunk(b"data: second\n\n") + LAST_CHUNK)
        await writer.drain()

    server = await raw_server(handler)
    resp = await http_client.post(server.url + "/stream", b"{}", {}, QUICK, "up")
    chunks = resp.iter_chunks()
    assert await anext(chunks) == b"data: first\n\n"
    go.set()
    assert [c async for c in chunks] == [b"data: second\n\n"]


async def test_without_idle_a_quiet_spell_yields_no_markers(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_200 + chunk(b"a"))
        await writer.drain()
        await asyncio.sleep(0.15)
        writer.write(chunk(b"b") + LAST_CHUNK)
        await writer.drain()

    server = await raw_server(handler)
    resp = await http_client.post(server.url, b"", {}, Timeouts(1.0, 0.5), "up")
    assert [c async for c in resp.iter_chunks()] == [b"a", b"b"]


async def test_bodies_read_to_the_end_leave_the_connection_in_the_pool(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if req.target == "/whole":
            writer.write(http_response(200, [], b"whole"))
        else:
            writer.write(CHUNKED_200 + chunk(b"streamed") + LAST_CHUNK)
        await writer.drain()

    server = await raw_server(handler)
    assert await (await http_client.post(server.url + "/whole", b"", {}, QUICK, "up")).read() == b"whole"
    resp = await http_client.post(server.url + "/stream", b"", {}, QUICK, "up")
    assert [c async for c in resp.iter_chunks()] == [b"streamed"]
    assert await (await http_client.post(server.url + "/whole", b"", {}, QUICK, "up")).read() == b"whole"
    assert [r.target for r in server.requests] == ["/whole", "/stream", "/whole"]
    assert server.connections == 1


async def test_an_abandoned_stream_drops_its_connection(raw_server, http_client: HttpClient) -> None:
    eof = asyncio.Event()

    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if req.target == "/again":
            writer.write(http_response(200, [], b"fresh"))
            return
        writer.write(CHUNKED_200 + chunk(b"data: part\n\n"))
        await writer.drain()
        assert await reader.read() == b""  # nothing more from the client, then its close
        eof.set()
        writer.close()

    server = await raw_server(handler)
    resp = await http_client.post(server.url, b"", {}, QUICK, "up")
    chunks = resp.iter_chunks()
    assert await anext(chunks) == b"data: part\n\n"
    await chunks.aclose()
    async with asyncio.timeout(1.0):
        await eof.wait()
    resp.close()  # idempotent
    assert await (await http_client.post(server.url + "/again", b"", {}, QUICK, "up")).read() == b"fresh"
    assert server.connections == 2


# ----------------------------------------------------------------------------- failures


async def test_connection_refused_is_upstream_unavailable(http_client: HttpClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/messages"  # nothing listens there
    with pytest.raises(UpstreamUnavailable) as info:
        await http_client.post(url, b"{}", {}, QUICK, "anth")
    assert str(info.value) == info.value.message == "could not connect to upstream anth"
    assert (info.value.status, info.value.retryable) == (502, True)
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


async def test_a_peer_that_closes_before_answering(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await raw_server(handler)
    with pytest.raises(UpstreamUnavailable) as info:
        await http_client.post(server.url, b"{}", {}, QUICK, "up")
    assert str(info.value) == "upstream up closed the connection unexpectedly"
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)


async def silent_after_headers(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Headers and the start of a body, then nothing until the client hangs up."""
    if req.target == "/chunked":
        writer.write(CHUNKED_200 + chunk(b"abc"))
    else:
        writer.write(http_response(200, [("Content-Length", "10")], b"abc", length=False))
    await writer.drain()
    await reader.read()


async def test_read_times_out_when_the_upstream_goes_silent(raw_server, http_client: HttpClient) -> None:
    server = await raw_server(silent_after_headers)
    loop = asyncio.get_running_loop()
    start = loop.time()
    resp = await http_client.post(server.url + "/length", b"", {}, Timeouts(1.0, 0.1), "slow")
    assert resp.status == 200
    with pytest.raises(UpstreamTimeout) as info:
        await resp.read()
    assert 0.099 <= loop.time() - start < 1.0
    assert str(info.value) == "upstream slow timed out"
    assert (info.value.status, info.value.retryable) == (504, True)
    assert isinstance(info.value.__cause__, aiohttp.ServerTimeoutError)


async def test_iter_chunks_times_out_after_what_arrived(raw_server, http_client: HttpClient) -> None:
    server = await raw_server(silent_after_headers)
    resp = await http_client.post(server.url + "/chunked", b"", {}, Timeouts(1.0, 0.1), "slow")
    got = []
    with pytest.raises(UpstreamTimeout) as info:
        async for c in resp.iter_chunks():
            got.append(c)
    assert got == [b"abc"]
    assert str(info.value) == "upstream slow timed out"


async def test_idle_markers_while_the_upstream_is_quiet(raw_server, http_client: HttpClient) -> None:
    go = asyncio.Event()

    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_200)
        await writer.drain()
        await go.wait()
        writer.write(chunk(b"data: late\n\n") + LAST_CHUNK)
        await writer.drain()

    server = await raw_server(handler)
    loop = asyncio.get_running_loop()
    resp = await http_client.post(server.url, b"", {}, Timeouts(1.0, 2.0), "up")
    chunks = resp.iter_chunks(idle=0.05)
    start = loop.time()
    assert [await anext(chunks) for _ in range(3)] == [b"", b"", b""]
    assert loop.time() - start >= 0.14  # one marker per 0.05 s of silence, not sooner
    go.set()
    rest = [c async for c in chunks]
    assert rest[-1] == b"data: late\n\n" and set(rest[:-1]) <= {b""}


async def test_idle_markers_then_the_read_timeout(raw_server, http_client: HttpClient) -> None:
    server = await raw_server(silent_after_headers)
    resp = await http_client.post(server.url + "/chunked", b"", {}, Timeouts(1.0, 0.2), "slow")
    got = []
    with pytest.raises(UpstreamTimeout) as info:
        async for c in resp.iter_chunks(idle=0.05):
            got.append(c)
    assert got[0] == b"abc" and set(got[1:]) == {b""}  # at least one marker, and only markers
    assert str(info.value) == "upstream slow timed out"


async def test_a_body_cut_mid_chunk_yields_what_arrived_then_fails(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_200 + chunk(b"data: one\n\n") + b"10\r\ndata: tw")  # a chunk of 16 bytes, cut at 8
        writer.close()

    server = await raw_server(handler)
    resp = await http_client.post(server.url, b"", {}, QUICK, "up")
    await wait_for_broken(resp)  # data and error both waiting: aiohttp would raise before handing the data out
    got = []
    with pytest.raises(UpstreamUnavailable) as info:
        async for c in resp.iter_chunks():
            got.append(c)
    assert b"".join(got) == b"data: one\n\ndata: tw"
    assert str(info.value) == "upstream up closed the connection unexpectedly"
    assert isinstance(info.value.__cause__, aiohttp.ClientPayloadError)


async def test_read_of_a_body_cut_short(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(http_response(200, [("Content-Length", "100")], b"0123456789", length=False))
        writer.close()

    server = await raw_server(handler)
    resp = await http_client.post(server.url, b"", {}, QUICK, "up")
    with pytest.raises(UpstreamUnavailable) as info:
        await resp.read()
    assert str(info.value) == "upstream up closed the connection unexpectedly"


def test_drain_takes_the_buffered_bytes_once() -> None:
    class Reader:
        def __init__(self) -> None:
            self._buffer = [b"data: a", b"\n\n", b"data: b"]

    reader = Reader()
    assert _drain(reader) == b"data: a\n\ndata: b"
    assert reader._buffer == []
    assert _drain(reader) == b""
    assert _drain(object()) == b""  # no private buffer: nothing to save


async def test_post_and_get_before_start_raise() -> None:
    client = HttpClient()
    with pytest.raises(RuntimeError, match=r"^HttpClient\.start\(\) was not called$"):
        await client.post("http://127.0.0.1:1/", b"", {}, QUICK, "up")
    with pytest.raises(RuntimeError, match=r"^HttpClient\.start\(\) was not called$"):
        await client.get("http://127.0.0.1:1/", {}, QUICK, "up")
    await client.start()
    await client.close()
    with pytest.raises(RuntimeError, match=r"^HttpClient\.start\(\) was not called$"):
        await client.post("http://127.0.0.1:1/", b"", {}, QUICK, "up")
    await client.close()  # a second close is harmless


def test_idle_ping_default() -> None:
    assert HttpClient().idle_ping == 10.0
    assert HttpClient(idle_ping=None).idle_ping is None


# ----------------------------------------------------------------------------- transport_error


def connector_error() -> aiohttp.ClientConnectorError:
    key = ConnectionKey(
        host="127.0.0.1", port=1, is_ssl=False, ssl=True, proxy=None, proxy_auth=None, proxy_headers_hash=None
    )
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (TimeoutError(), UpstreamTimeout, "upstream w timed out"),
        (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), UpstreamTimeout, "upstream w timed out"),
        (aiohttp.SocketTimeoutError("socket"), UpstreamTimeout, "upstream w timed out"),
        (aiohttp.ConnectionTimeoutError("connect"), UpstreamTimeout, "upstream w timed out"),
        (connector_error(), UpstreamUnavailable, "could not connect to upstream w"),
        (aiohttp.ServerDisconnectedError(), UpstreamUnavailable, "upstream w closed the connection unexpectedly"),
        (aiohttp.ClientPayloadError("cut"), UpstreamUnavailable, "upstream w closed the connection unexpectedly"),
        (aiohttp.ClientOSError(104, "reset"), UpstreamUnavailable, "upstream w failed: ClientOSError"),
        (aiohttp.ClientConnectionError("x"), UpstreamUnavailable, "upstream w failed: ClientConnectionError"),
        (aiohttp.InvalidURL("nope"), UpstreamUnavailable, "upstream w failed: InvalidURL"),
        (aiohttp.ClientError(), UpstreamUnavailable, "upstream w failed: ClientError"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_transport_error_maps_each_failure(exc: Exception, kind: type[GatewayError], message: str) -> None:
    err = transport_error(exc, "w")
    assert type(err) is kind
    assert str(err) == message


@pytest.mark.parametrize(
    "exc", [InvalidRequest("mine"), UpstreamTimeout("already typed"), ValueError("bug"), OSError("raw"), KeyError("k")]
)
def test_transport_error_passes_other_exceptions_through(exc: Exception) -> None:
    assert transport_error(exc, "w") is exc


async def test_invalid_urls_are_upstream_unavailable(http_client: HttpClient) -> None:
    with pytest.raises(UpstreamUnavailable, match=r"^upstream w failed: InvalidUrlClientError$"):
        await http_client.post("http://", b"", {}, QUICK, "w")
    with pytest.raises(UpstreamUnavailable, match=r"^upstream w failed: NonHttpUrlClientError$"):
        await http_client.post("ftp://127.0.0.1/x", b"", {}, QUICK, "w")


# ----------------------------------------------------------------------------- the wire


async def test_post_sends_the_body_and_headers_exactly(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(http_response(200, [("Content-Type", "application/json")], b"{}"))

    server = await raw_server(handler)
    body = '{"model":"claude","messages":[{"role":"user","content":"héllo ✓"}],"x":1.50}'.encode()
    headers = {"content-type": "application/json", "X-Api-Key": "sk-ant-1", "anthropic-beta": "a-1,b-2"}
    resp = await http_client.post(server.url + "/v1/messages?beta=true", body, headers, QUICK, "anth")
    assert await resp.read() == b"{}"
    [req] = server.requests
    assert (req.method, req.target, req.body) == ("POST", "/v1/messages?beta=true", body)
    assert ("X-Api-Key", "sk-ant-1") in req.headers  # the name as given
    assert sorted(req.names) == sorted(
        ["host", "content-type", "x-api-key", "anthropic-beta", "accept", "accept-encoding", "content-length"]
    )  # in particular no user-agent and no cookie
    assert {k.lower(): v for k, v in req.headers if k.lower() != "accept-encoding"} == {
        "host": f"127.0.0.1:{server.port}",
        "content-type": "application/json",
        "x-api-key": "sk-ant-1",
        "anthropic-beta": "a-1,b-2",
        "accept": "*/*",
        "content-length": str(len(body)),
    }


async def test_get_sends_the_headers_and_no_body(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(http_response(200, [], b'{"data":[]}'))

    server = await raw_server(handler)
    resp = await http_client.get(server.url + "/v1/models?limit=5", {"authorization": "Bearer k"}, QUICK, "oai")
    assert (resp.status, await resp.read()) == (200, b'{"data":[]}')
    [req] = server.requests
    assert (req.method, req.target, req.body) == ("GET", "/v1/models?limit=5", b"")
    assert req.header("authorization") == "Bearer k"
    assert sorted(req.names) == ["accept", "accept-encoding", "authorization", "host"]


async def test_no_cookie_jar(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cookie = f"session={os.urandom(4).hex()}; Path=/; Max-Age=3600"
        writer.write(http_response(200, [("Set-Cookie", cookie), ("Set-Cookie", "other=1; Path=/")], b"{}"))

    server = await raw_server(handler)
    # By name: a cookie jar refuses cookies from an IP address anyway, so 127.0.0.1 would prove nothing.
    for _ in range(3):
        resp = await http_client.post(f"http://localhost:{server.port}/v1/messages", b"{}", {}, QUICK, "up")
        assert resp.headers["set-cookie"].startswith("session=")
        await resp.read()
    assert len(server.requests) == 3
    assert all(req.header("cookie") is None for req in server.requests)


# ----------------------------------------------------------------------------- idle and total timeouts


Handler = Callable[[RawRequest, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def dribbling(gap: float, count: int) -> Handler:
    """A chunked stream of ``count`` chunks, ``gap`` seconds apart."""

    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_200)
        for i in range(count):
            writer.write(chunk(b"data: %d\n\n" % i))
            await writer.drain()
            await asyncio.sleep(gap)
        writer.write(LAST_CHUNK)
        await writer.drain()

    return handler


async def test_a_streams_gaps_have_the_idle_timeout(raw_server, http_client: HttpClient) -> None:
    """Once a stream's headers have come, every silence may last ``idle`` (not ``read``)."""
    server = await raw_server(dribbling(0.4, 3))
    timeouts = Timeouts(connect=1.0, read=5.0, first_byte=1.0, idle=0.2)
    resp = await http_client.post(server.url, b"", {}, timeouts, "anth", first_byte=1.0)
    got = []
    with pytest.raises(UpstreamTimeout):
        async for c in resp.iter_chunks():
            got.append(c)
    assert got == [b"data: 0\n\n"]
    resp = await http_client.post(server.url, b"", {}, Timeouts(1.0, 5.0, first_byte=1.0), "anth", first_byte=1.0)
    assert len([c async for c in resp.iter_chunks()]) == 3  # without it: ``read``


async def test_the_total_timeout_bounds_the_whole_call(raw_server, http_client: HttpClient) -> None:
    server = await raw_server(dribbling(0.1, 20))  # never silent for long, two seconds in all
    loop = asyncio.get_running_loop()
    start = loop.time()
    resp = await http_client.post(server.url, b"", {}, Timeouts(1.0, 1.0, total=0.5), "anth", first_byte=1.0)
    with pytest.raises(UpstreamTimeout):
        await resp.read()
    assert 0.45 <= loop.time() - start < 1.0
