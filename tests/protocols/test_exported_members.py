"""The four codec packages' one interface (``modelgate.protocols.codec``), pinned: the names every
package exports, where each is defined, the modules every package has, and the stream objects'
methods. Like httpx's ``tests/test_exported_members.py``: a change to the surface is a change here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

from modelgate import ir
from modelgate.errors import ErrorKind, GatewayError, UpstreamHTTPError
from modelgate.protocols import WireProtocol, anthropic, codec, gemini, openai_chat, openai_responses
from modelgate.protocols.tap import AnswerTap

PACKAGES: dict[str, ModuleType] = {
    "anthropic": anthropic,
    "openai_chat": openai_chat,
    "openai_responses": openai_responses,
    "gemini": gemini,
}

#: Every name a codec package exports, and the module (of the scheme) that defines it.
COMMON: dict[str, tuple[str, ...]] = {
    "check_request": ("client_request",),
    "decode_request": ("client_request",),
    "encode_response": ("client_response",),
    "StreamEncoder": ("client_stream",),
    "encode_request": ("upstream_request",),
    "decode_response": ("upstream_response",),
    "decode_usage": ("upstream_response", "usage"),  # openai_chat's usage module serves both ways
    "StreamDecoder": ("upstream_stream",),
    "render_error": ("errors",),
    "error_body": ("errors",),
    "error_from_upstream": ("errors",),
    "error_from_object": ("errors",),
}
TAPS = {
    "anthropic": "AnthropicTap",
    "openai_chat": "ChatTap",
    "openai_responses": "ResponsesTap",
    "gemini": "GeminiTap",
}

#: The modules every package has (``modelgate.protocols.codec``).
SCHEME = frozenset(
    {
        "client_request",
        "client_response",
        "client_stream",
        "upstream_request",
        "upstream_response",
        "upstream_stream",
        "errors",
        "tap",
    }
)
#: The protocol-specific helper modules, each named for what it holds.
HELPERS = {
    "anthropic": frozenset({"background", "blocks", "collect"}),
    "openai_chat": frozenset({"client_messages", "client_tools", "collect", "usage"}),
    "openai_responses": frozenset({"client_input", "collect", "common", "compact"}),
    "gemini": frozenset({"collect", "fields", "generation", "jsonarray", "schema", "signatures"}),
}

#: What each package exports beyond the common set.
EXTRA = {
    "anthropic": {
        "MIN_THINKING_BUDGET",
        "MessageCollector",
        "classify_background",
        "decode_block",
        "encode_block",
        "encode_event",
        "encode_usage",
        "error_type",
        "fit_body",
        "prompt_too_long",
        "supports_adaptive_thinking",
        "with_stream",
    },
    "openai_chat": {
        "DEFAULT_MAX_TOKENS",
        "EFFORTS",
        "CompletionCollector",
        "encode_usage",
        "error_status",
        "fallback_tool_id",
        "fit_thinking",
        "include_usage",
        "invalid",
        "missing_key",
        "model_not_found",
        "parse_arguments",
        "reasoning_text",
        "stop_reason_for",
        "unmapped_extras",
        "with_stream",
        "wrong_key",
    },
    "openai_responses": {
        "DEFAULT_MAX_OUTPUT_TOKENS",
        "ResponseCollector",
        "compaction_request",
        "compaction_response",
        "encode_usage",
        "failed_event",
        "fit_thinking",
        "response_error",
        "with_stream",
    },
    "gemini": {"DEFAULT_MAX_TOKENS", "KEY_MISSING", "ResponseCollector", "decode_count_request", "include_thoughts"},
}

packages = pytest.mark.parametrize("name", sorted(PACKAGES))


def submodules(package: ModuleType) -> set[str]:
    return {m.name for m in pkgutil.iter_modules(package.__path__)}


@packages
def test_the_common_surface_is_exported(name: str) -> None:
    package = PACKAGES[name]
    assert set(package.__all__) == {"PROTOCOL", TAPS[name], *COMMON, *EXTRA[name]}
    assert package.__all__ == sorted(package.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n))
    for member in package.__all__:
        assert hasattr(package, member), member


@packages
def test_everything_public_is_in_all(name: str) -> None:
    """As httpx pins it: no public name is importable from the package without being exported."""
    package = PACKAGES[name]
    public = {
        member
        for member, value in vars(package).items()
        if not member.startswith("_") and not isinstance(value, ModuleType) and member != "annotations"
    }
    assert public == set(package.__all__)


@packages
def test_the_protocol_is_the_package(name: str) -> None:
    assert PACKAGES[name].PROTOCOL is WireProtocol(name)


@packages
def test_the_modules_follow_the_scheme(name: str) -> None:
    package = PACKAGES[name]
    assert submodules(package) == SCHEME | HELPERS[name]
    for module in sorted(submodules(package)):
        doc = importlib.import_module(f"{package.__name__}.{module}").__doc__
        assert doc and doc.strip(), f"{name}.{module} has no docstring"


@packages
def test_each_common_name_lives_in_its_module(name: str) -> None:
    package = PACKAGES[name]
    for member, modules in COMMON.items():
        defined_in = getattr(package, member).__module__.rpartition(".")[2]
        assert defined_in in modules, (member, defined_in)
    assert getattr(package, TAPS[name]).__module__ == f"{package.__name__}.tap"


@packages
def test_the_tap_is_an_answer_tap(name: str) -> None:
    assert issubclass(getattr(PACKAGES[name], TAPS[name]), AnswerTap)


def protocol_methods(protocol: type) -> dict[str, list[str]]:
    """The methods a ``typing.Protocol`` declares, with their parameter names."""
    return {
        method: list(inspect.signature(getattr(protocol, method)).parameters)
        for method in vars(protocol)
        if not method.startswith("_") and callable(getattr(protocol, method))
    }


@packages
@pytest.mark.parametrize(
    ("member", "protocol"), [("StreamEncoder", codec.StreamEncoder), ("StreamDecoder", codec.StreamDecoder)]
)
def test_the_stream_objects_have_the_interface(name: str, member: str, protocol: type) -> None:
    expected = protocol_methods(protocol)
    assert set(expected) == ({"encode", "error", "end"} if member == "StreamEncoder" else {"decode", "finish"})
    cls = getattr(PACKAGES[name], member)
    for method, parameters in expected.items():
        assert list(inspect.signature(getattr(cls, method)).parameters) == parameters, (member, method)


@packages
def test_errors_render_in_the_clients_envelope(name: str) -> None:
    """``render_error(err, request_id)`` is (status, a JSON object); ``error_body(err)`` is its body."""
    package = PACKAGES[name]
    err = GatewayError("slow down", status=429, kind=ErrorKind.RATE_LIMIT)
    status, body = package.render_error(err, "req_1")
    assert status == 429 and isinstance(body, dict)
    assert {k: v for k, v in package.error_body(err).items() if k != "request_id"} == {
        k: v for k, v in body.items() if k != "request_id"
    }


@packages
def test_upstream_errors_are_typed(name: str) -> None:
    err = PACKAGES[name].error_from_upstream(429, b'{"error": {"message": "slow down"}}', {})
    assert isinstance(err, UpstreamHTTPError) and (err.status, err.message) == (429, "slow down")


@packages
def test_usage_decodes_to_the_ir(name: str) -> None:
    assert PACKAGES[name].decode_usage(None) == ir.Usage()
