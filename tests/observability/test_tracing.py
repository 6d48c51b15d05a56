"""Traces: the spans a settled request leaves (request, attempts), their parents and timings,
the client's ``traceparent``, sampling; a real gateway request exported over OTLP/HTTP to a
collector on 127.0.0.1; the clear refusal when the extra is missing; and nothing of
OpenTelemetry loaded when tracing is off."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelgate import ir
from modelgate.app import Gateway
from modelgate.config import ConfigError, parse_config
from modelgate.errors import ErrorKind, GatewayError, UpstreamHTTPError
from modelgate.observability import tracing as tracing_module
from modelgate.observability.tracing import Tracing, TracingUnavailable, traces_url
from modelgate.pipeline.context import Attempt, Call, Operation, RequestContext
from modelgate.policy.auth import Principal
from modelgate.store.records import KeyRecord
from modelgate.testing.runner import FakeUpstream
from tests.conftest import gateway_config
from tests.pipeline.helpers import ANTHROPIC_HEADERS, anthropic_body, configured_gateway

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
MODEL = "claude-sonnet-4-6"


def config(**tracing: Any) -> Any:
    data = {
        "master_key": "mg-test",
        "server": {"data_dir": tempfile.mkdtemp(prefix="mg-trace-")},
        "providers": [
            {"name": "anth", "type": "anthropic", "api_keys": ["sk-x"]},
            {"name": "local", "type": "openai-compatible", "base_url": "http://127.0.0.1:1", "api_keys": ["sk-y"]},
        ],
        "models": [{"name": MODEL, "provider": "anth"}],
        "tracing": {"enabled": True, **tracing},
    }
    return parse_config(data, "test", env={})


@contextmanager
def traced(**settings: Any) -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracing = Tracing(config(**settings), exporter)
    try:
        yield tracing, exporter
    finally:
        tracing.close()


def key_record() -> KeyRecord:
    now = datetime.now(UTC)
    return KeyRecord(
        "key_7", "ci", "0" * 64, "mg-…abcd", "team_3", (), None, None, None, None, (), None, None, None, None,
        (), None, None, {}, now, now,
    )  # fmt: skip


def settled_context(*, error: bool = False) -> RequestContext:
    """A request as settle sees it: a first attempt that failed with a 529, a second that served."""
    t0 = time.perf_counter() - 1.0
    ctx = RequestContext("req_abc", "anthropic", "messages", started=t0)
    ctx.caller = Principal("key_7", "virtual_key", key_record())
    ctx.call = Call(Operation.GENERATE, b"{}", {}, MODEL, True)
    ctx.endpoint_id, ctx.session_id, ctx.client_ip = "ep_1", "sess_9", "10.1.2.3"
    ctx.trace_context = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    first = Attempt("anth", "claude-sonnet-4-6-20250101", "anth#0", True, started=t0 + 0.01)
    first.error = UpstreamHTTPError("overloaded", status=529, kind=ErrorKind.OVERLOADED, protocol="anthropic")
    first.status, first.latency = 529, 0.1
    second = Attempt("local", "qwen2.5", "local#1", False, started=t0 + 0.2)
    second.status, second.latency, second.upstream_request_id = 200, 0.3, "up_42"
    ctx.attempts = [first, second]
    ctx.first_byte, ctx.duration = 0.6, 0.9
    ctx.usage = ir.Usage(input_tokens=10, output_tokens=5, cache_read_tokens=3, cache_write_tokens=2)
    ctx.stop_reason, ctx.status, ctx.cost = "end_turn", 200, 0.0125
    if error:
        second.status, second.error = (
            502,
            GatewayError("slow down", status=429, kind=ErrorKind.RATE_LIMIT, code="rate_limit_exceeded"),
        )
        ctx.fail(second.error, 429)
        ctx.usage = ctx.stop_reason = None
        ctx.cost = 0.0
    return ctx


def spans_of(tracing: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert tracing.flush()
    return list(exporter.get_finished_spans())


def test_a_request_and_its_attempts_are_spans_under_the_clients_trace() -> None:
    ctx = settled_context()
    with traced() as (tracing, exporter):
        tracing.record(ctx)
        spans = spans_of(tracing, exporter)
    request = next(s for s in spans if s.kind is SpanKind.SERVER)
    attempts = sorted((s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert len(spans) == 3 and len(attempts) == 2
    # The client's trace is kept; the request is a child of its span, each attempt of the request.
    assert all(s.context is not None and f"{s.context.trace_id:032x}" == TRACE_ID for s in spans)
    assert request.parent is not None and f"{request.parent.span_id:016x}" == CLIENT_SPAN
    assert request.parent.is_remote and request.context is not None
    assert request.context.trace_state.to_header() == "vendor=1"
    assert [a.parent.span_id if a.parent else None for a in attempts] == [request.context.span_id] * 2
    assert request.name == f"chat {MODEL}"
    assert [a.name for a in attempts] == ["chat claude-sonnet-4-6-20250101", "chat qwen2.5"]
    assert request.attributes == {
        "gen_ai.operation.name": "chat",
        "modelgate.request_id": "req_abc",
        "modelgate.door": "anthropic",
        "modelgate.endpoint": "messages",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.stream": True,
        "gen_ai.provider.name": "local",
        "gen_ai.system": "local",
        "modelgate.provider": "local",
        "modelgate.attempts": 2,
        "gen_ai.response.model": "qwen2.5",
        "http.response.status_code": 200,
        "gen_ai.usage.input_tokens": 15,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cache_read.input_tokens": 3,
        "gen_ai.usage.cache_creation.input_tokens": 2,
        "gen_ai.response.finish_reasons": ("end_turn",),
        "gen_ai.response.time_to_first_chunk": 0.6,
        "modelgate.cost_usd": 0.0125,
        "modelgate.key_id": "key_7",
        "modelgate.team_id": "team_3",
        "modelgate.endpoint_id": "ep_1",
        "gen_ai.conversation.id": "sess_9",
        "modelgate.session_id": "sess_9",
        "client.address": "10.1.2.3",
    }
    assert request.status.status_code is StatusCode.UNSET
    failed, served = attempts
    assert failed.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-6-20250101",
        "modelgate.provider": "anth",
        "modelgate.attempt": 1,
        "modelgate.passthrough": True,
        "modelgate.upstream_key_id": "anth#0",
        "http.response.status_code": 529,
        "error.type": "overloaded",
    }
    assert failed.status.status_code is StatusCode.ERROR and failed.status.description == "overloaded"
    assert served.attributes is not None and served.status.status_code is StatusCode.UNSET
    assert served.attributes["modelgate.upstream_request_id"] == "up_42"
    assert served.attributes["gen_ai.response.model"] == "qwen2.5"
    assert served.attributes["gen_ai.usage.output_tokens"] == 5
    assert "error.type" not in served.attributes
    # Timings: as measured, in order, at the wall-clock times they happened.
    start = request.start_time or 0
    ms = [round(((t or 0) - start) / 1e6) for t in (failed.start_time, failed.end_time, served.start_time)]
    assert ms == [10, 110, 200]
    assert served.end_time == request.end_time  # the serving attempt lasts to the answer's end
    assert round(((request.end_time or 0) - start) / 1e6) == 900
    assert [(e.name, round((e.timestamp - start) / 1e6)) for e in request.events] == [("first_byte", 600)]
    assert [(e.name, round((e.timestamp - start) / 1e6)) for e in served.events] == [("response_headers", 500)]
    assert abs(start / 1e9 - (time.time() - 1.0)) < 0.5


def test_a_failed_request_is_an_error_span() -> None:
    ctx = settled_context(error=True)
    with traced() as (tracing, exporter):
        tracing.record(ctx)
        spans = spans_of(tracing, exporter)
    request = next(s for s in spans if s.kind is SpanKind.SERVER)
    last = max((s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert request.status.status_code is StatusCode.ERROR and request.status.description == "slow down"
    assert request.attributes is not None and last.attributes is not None
    assert request.attributes["error.type"] == "rate_limit_exceeded"
    assert request.attributes["http.response.status_code"] == 429
    assert "gen_ai.response.model" not in request.attributes
    assert "gen_ai.usage.input_tokens" not in request.attributes
    assert last.status.status_code is StatusCode.ERROR and last.attributes["error.type"] == "rate_limit_exceeded"
    assert last.end_time is not None and last.start_time is not None
    assert round((last.end_time - last.start_time) / 1e6) == 300  # a failed attempt ends with its failure


def test_a_request_refused_before_parsing_is_one_span_named_by_its_endpoint() -> None:
    ctx = RequestContext("req_x", "openai_chat", "chat")
    ctx.fail(UpstreamHTTPError("no", status=401, kind=ErrorKind.AUTHENTICATION, protocol="openai"), 401)
    ctx.duration = 0.001
    with traced() as (tracing, exporter):
        tracing.record(ctx)
        (span,) = spans_of(tracing, exporter)
    assert span.name == "openai_chat chat" and span.parent is None
    assert span.attributes == {
        "gen_ai.operation.name": "chat",
        "modelgate.request_id": "req_x",
        "modelgate.door": "openai_chat",
        "modelgate.endpoint": "chat",
        "http.response.status_code": 401,
        "error.type": "authentication",
    }


def test_gemini_and_token_counting_operations() -> None:
    ctx = RequestContext("req_g", "gemini", "generateContent")
    ctx.call = Call(Operation.GENERATE, b"{}", {}, "gemini-2.5-flash", False)
    ctx.duration = 0.01
    count = RequestContext("req_c", "anthropic", "count_tokens")
    count.call = Call(Operation.COUNT_TOKENS, b"{}", {}, MODEL, False)
    count.duration = 0.01
    with traced() as (tracing, exporter):
        tracing.record(ctx)
        tracing.record(count)
        names = sorted(s.name for s in spans_of(tracing, exporter))
    assert names == [f"count_tokens {MODEL}", "generate_content gemini-2.5-flash"]


def test_sampling_follows_the_clients_flag_and_the_ratio() -> None:
    unsampled = settled_context()
    unsampled.trace_context = {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-00"}
    sampled = settled_context()
    with traced(sample_ratio=0.0) as (tracing, exporter):
        tracing.record(unsampled)  # the client did not sample it
        root = settled_context()
        root.trace_context = None
        tracing.record(root)  # no parent: the ratio (0) decides
        tracing.record(sampled)  # the client sampled it: traced whatever the ratio
        spans = spans_of(tracing, exporter)
    assert len(spans) == 3
    assert {f"{s.context.trace_id:032x}" for s in spans if s.context is not None} == {TRACE_ID}


def test_a_malformed_traceparent_starts_a_trace_of_its_own() -> None:
    ctx = settled_context()
    ctx.trace_context = {"traceparent": "00-nonsense-01"}
    with traced() as (tracing, exporter):
        tracing.record(ctx)
        spans = spans_of(tracing, exporter)
    request = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert request.parent is None and request.context is not None
    assert f"{request.context.trace_id:032x}" != TRACE_ID and len(spans) == 3


def test_spans_are_made_off_the_request_path_and_none_is_lost_at_close(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(config(), exporter)
    real = tracing.spans
    calls: list[str] = []

    def flaky(ctx: RequestContext, wall: int, now: float) -> None:
        calls.append(ctx.request_id)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        real(ctx, wall, now)

    tracing.spans = flaky  # type: ignore[method-assign]
    broken, first, second = settled_context(), settled_context(), settled_context()
    broken.request_id, first.request_id, second.request_id = "req_broken", "req_1", "req_2"
    for ctx in (broken, first, second):
        tracing.record(ctx)
    tracing.close()  # no flush: closing makes the spans of what is queued, and exports them
    assert calls == ["req_broken", "req_1", "req_2"]
    requests = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert sorted(s.attributes["modelgate.request_id"] for s in requests if s.attributes) == ["req_1", "req_2"]
    assert "tracing: the spans of request req_broken were lost" in caplog.text
    assert not tracing._worker.is_alive()


def test_a_full_queue_drops_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing_module, "QUEUE_LIMIT", 1)
    with traced() as (tracing, _):
        taken, gate = threading.Event(), threading.Event()

        def stuck(ctx: RequestContext, wall: int, now: float) -> None:
            taken.set()
            gate.wait(10)

        tracing.spans = stuck  # type: ignore[method-assign]
        tracing.record(settled_context())  # the thread takes it, and is stuck on it
        assert taken.wait(10)
        tracing.record(settled_context())  # queued: the queue is full
        tracing.record(settled_context())  # dropped
        assert (tracing.dropped, tracing.pending.qsize()) == (1, 1)
        gate.set()


def test_traces_url() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://otel.example/v1/traces") == "https://otel.example/v1/traces"
    assert traces_url("https://otel.example/custom/path") == "https://otel.example/custom/path"


def test_tracing_config_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"tracing.endpoint: must be an http"):
        config(endpoint="collector:4318")
    with pytest.raises(ConfigError, match=r"tracing.sample_ratio: Input should be less than or equal to 1"):
        config(sample_ratio=2)
    assert parse_config({}, "test", env={}).tracing.enabled is False


def test_without_the_extra_the_gateway_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing_module, "_MISSING", ImportError("No module named 'opentelemetry'"))
    with pytest.raises(TracingUnavailable) as caught:
        Gateway(config(endpoint="http://127.0.0.1:4318"))
    assert str(caught.value) == (
        "tracing is enabled in the config, but OpenTelemetry is not installed: pip install 'modelgate[otel]'"
    )
    assert isinstance(caught.value, ValueError)  # what ``modelgate serve`` reports at start


def test_serve_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    """``modelgate serve`` with tracing on, where OpenTelemetry cannot be imported: exit 2, the command."""
    config = tmp_path / "modelgate.yaml"
    config.write_text(f"server: {{data_dir: {tmp_path}}}\nmaster_key: mg-k\ntracing: {{enabled: true}}\n")
    script = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the extra were not installed\n"
        "from modelgate.cli import main\n"
        f"main(['serve', '--config', {str(config)!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "error: tracing is enabled in the config, but OpenTelemetry is not installed: pip install 'modelgate[otel]'\n"
    )


def test_tracing_off_loads_nothing_of_opentelemetry(fake: FakeUpstream) -> None:
    script = (
        "import sys, tempfile\n"
        "from modelgate.app import Gateway\n"
        "from modelgate.config import parse_config\n"
        "config = parse_config({'server': {'data_dir': tempfile.mkdtemp()}, 'master_key': 'mg-k'}, 't', env={})\n"
        "gw = Gateway(config)\n"
        "assert gw.tracing is None and gw.settler.tracing is None and not gw.admission.trace_context\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout == "[]\n"


# --------------------------------------------------------------------------- through a real gateway


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps each export's path, headers and decoded body."""

    received: list[tuple[str, dict[str, str], ExportTraceServiceRequest]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, export))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def collector() -> Iterator[tuple[str, list[tuple[str, dict[str, str], ExportTraceServiceRequest]]]]:
    received: list[tuple[str, dict[str, str], ExportTraceServiceRequest]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _attributes(span: Any) -> dict[str, Any]:
    def value(v: Any) -> Any:
        kind = v.WhichOneof("value")
        return [value(x) for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)

    return {a.key: value(a.value) for a in span.attributes}


async def test_a_gateway_request_is_exported_to_the_collector(fake: FakeUpstream) -> None:
    with collector() as (endpoint, received):
        data = {
            **gateway_config(fake),
            "router": {"attempts": 2, "backoff": 0, "jitter": 0},
            "tracing": {
                "enabled": True,
                "endpoint": endpoint,
                "service_name": "gateway-under-test",
                "headers": {"x-collector-key": "c0llect"},
            },
        }
        async with configured_gateway(data) as (gw, ac):
            fake.script(error={"status": 529}, times=1)
            headers = {**ANTHROPIC_HEADERS, "traceparent": TRACEPARENT, "tracestate": "vendor=1"}
            r = await ac.post("/v1/messages", json=anthropic_body(MODEL, stream=True), headers=headers)
            assert r.status_code == 200
            assert gw.tracing is not None and gw.tracing.flush()
        assert len(received) == 1
    path, sent_headers, export = received[0]
    assert path == "/v1/traces" and sent_headers["x-collector-key"] == "c0llect"
    assert sent_headers["content-type"] == "application/x-protobuf"
    (resource_spans,) = export.resource_spans
    resource = _attributes(resource_spans.resource)
    assert resource["service.name"] == "gateway-under-test"
    spans = [s for scope in resource_spans.scope_spans for s in scope.spans]
    by_kind = {kind: [s for s in spans if s.kind == kind] for kind in (2, 3)}  # SERVER, CLIENT
    (request,), attempts = by_kind[2], sorted(by_kind[3], key=lambda s: s.start_time_unix_nano)
    assert {s.trace_id.hex() for s in spans} == {TRACE_ID}
    assert request.parent_span_id.hex() == CLIENT_SPAN and request.trace_state == "vendor=1"
    assert [a.parent_span_id for a in attempts] == [request.span_id, request.span_id]
    attributes = _attributes(request)
    assert attributes["gen_ai.request.model"] == MODEL and attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["modelgate.request_id"].startswith("req_") and attributes["modelgate.attempts"] == 2
    assert attributes["http.response.status_code"] == 200 and attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.output_tokens"] > 0 and attributes["gen_ai.response.finish_reasons"]
    assert [_attributes(a)["http.response.status_code"] for a in attempts] == [529, 200]
    assert [a.status.code for a in attempts] == [2, 0]  # ERROR, UNSET
    assert [e.name for e in request.events] == ["first_byte"]
    first, second = attempts
    assert request.start_time_unix_nano <= first.start_time_unix_nano < first.end_time_unix_nano
    assert first.end_time_unix_nano <= second.start_time_unix_nano < second.end_time_unix_nano
    assert second.end_time_unix_nano == request.end_time_unix_nano
    assert abs(request.start_time_unix_nano / 1e9 - time.time()) < 30


async def test_tracing_off_keeps_no_traceparent(fake: FakeUpstream) -> None:
    async with configured_gateway(gateway_config(fake)) as (gw, ac):
        seen: list[RequestContext] = []
        settle = gw.settler.settle
        gw.settler.settle = lambda ctx, gone=False: (seen.append(ctx), settle(ctx, gone))[1]  # type: ignore[method-assign]
        headers = {**ANTHROPIC_HEADERS, "traceparent": TRACEPARENT}
        r = await ac.post("/v1/messages", json=anthropic_body(MODEL), headers=headers)
        assert r.status_code == 200
    assert gw.tracing is None and [c.trace_context for c in seen] == [None]
