"""A scriptable, deterministic emulator of the upstream provider APIs.

Used by the test suite, the benchmarks and offline demos: one ASGI app on one
port serves Anthropic Messages (``/v1/messages``, ``/v1/messages/count_tokens``)
and OpenAI Chat Completions (``/v1/chat/completions``), both ``/v1/models``
shapes, and a ``/_fake/*`` control API to queue scripts and read back what the
gateway sent. Typical use in a test::

    from modelgate.testing import run_fake_upstream

    with run_fake_upstream() as fake:            # a subprocess on a free port
        fake.script(tool_calls=[{"name": "Bash", "input": {"command": "echo hi"}}])
        ...  # point the gateway at fake.base_url (Anthropic) or fake.openai_base_url
        assert fake.last_request("/v1/messages")["headers"]["anthropic-beta"] == "..."

Or drive it from a prompt: ``[[fake:tool Bash {"command":"echo hi"}]]``.

Modules: ``script`` (the scripting model, directives and fields), ``reply``
(default answers and token formulas), ``respond`` (the handler steps every protocol
shares: script, delay, reply, body or stream), ``fake_anthropic``, ``fake_openai``,
``fake_responses`` and ``fake_gemini`` (the wire protocols), ``fake_upstream`` (app,
routing, recording, ``serve``), ``runner`` (:class:`FakeUpstream`,
:func:`run_fake_upstream`), ``pytest_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelgate.testing.fake_upstream import FakeConfig, FakeUpstreamApp, create_app, serve
    from modelgate.testing.runner import FakeUpstream, run_fake_upstream, wait_until_listening
    from modelgate.testing.script import Script, ScriptError

__all__ = [
    "FakeConfig",
    "FakeUpstream",
    "FakeUpstreamApp",
    "Script",
    "ScriptError",
    "create_app",
    "run_fake_upstream",
    "serve",
    "wait_until_listening",
]

_HOMES = {
    "FakeConfig": "fake_upstream",
    "FakeUpstreamApp": "fake_upstream",
    "create_app": "fake_upstream",
    "serve": "fake_upstream",
    "FakeUpstream": "runner",
    "run_fake_upstream": "runner",
    "wait_until_listening": "runner",
    "Script": "script",
    "ScriptError": "script",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m modelgate.testing.fake_upstream`` does not import
    # the module twice (runpy warns when the package already imported it).
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
