"""Claude Code's background calls, recognised on the bodies real releases sent
(``tests/fixtures/claude_code``, captured from the npm releases)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from modelgate.protocols.anthropic import classify_background
from modelgate.protocols.codec import Background

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "claude_code"


def captured(name: str) -> dict[str, Any]:
    body = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    assert isinstance(body, dict)
    return body


WARMUPS = [
    "2.0.19/warmup_explore",
    "2.1.0/warmup_bash",
    "2.1.0/warmup_explore",
    "2.1.0/warmup_plan",
    "2.1.5/warmup_bash",
]
FIRST_TURNS = [
    "2.0.15/first_turn",
    "2.0.19/first_turn",
    "2.1.0/first_turn",
    "2.1.6/first_turn",
    "2.1.330/first_turn",
]


def test_every_fixture_is_classified_here() -> None:
    """A fixture added later must be given its expected class below."""
    names = {str(p.relative_to(FIXTURES).with_suffix("")) for p in FIXTURES.glob("*/*.json")}
    names = {n for n in names if not n.endswith(".headers")}
    assert names == {*WARMUPS, *FIRST_TURNS, "2.1.0/topic", "2.1.330/title", "2.1.330/model_probe"}


@pytest.mark.parametrize("name", WARMUPS)
def test_the_warmups_older_releases_sent_are_warmups(name: str) -> None:
    body = captured(name)
    assert body["stream"] is True  # answered locally, they must be answered as a stream
    assert classify_background(body) is Background.WARMUP


def test_a_bare_string_warmup_is_a_warmup() -> None:
    body = {**captured("2.1.0/warmup_explore"), "messages": [{"role": "user", "content": "Warmup"}]}
    assert classify_background(body) is Background.WARMUP
    minimal = {"model": "claude-haiku-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "Warmup"}]}
    assert classify_background(minimal) is Background.WARMUP


@pytest.mark.parametrize("name", FIRST_TURNS)
def test_first_turns_are_not_background(name: str) -> None:
    assert classify_background(captured(name)) is None


def test_the_model_probe_is_never_background() -> None:
    probe = captured("2.1.330/model_probe")
    assert (probe["max_tokens"], probe["messages"][0]["content"][0]["text"]) == (1, "Hi")
    assert classify_background(probe) is None
    # not even a probe that said "Warmup": max_tokens 1 is never touched
    assert classify_background({**probe, "messages": [{"role": "user", "content": "Warmup"}]}) is None


def test_the_session_title_request_is_a_title() -> None:
    assert classify_background(captured("2.1.330/title")) is Background.TITLE


def test_the_older_topic_request_is_left_alone() -> None:
    assert classify_background(captured("2.1.0/topic")) is None


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Warmup please"}],
        [{"role": "user", "content": "warmup"}],
        [{"role": "assistant", "content": "Warmup"}],
        [{"role": "user", "content": [{"type": "text", "text": "Warmup"}, {"type": "text", "text": "and more"}]}],
        [{"role": "user", "content": [{"type": "image", "source": {}}]}],
        [{"role": "user", "content": "Warmup"}, {"role": "assistant", "content": "Hi"}],
        [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "Warmup"},
        ],
    ],
)
def test_near_misses_are_not_warmups(messages: list[dict[str, Any]]) -> None:
    assert classify_background({"model": "m", "max_tokens": 100, "messages": messages}) is None


def test_a_title_schema_with_tools_or_more_properties_is_not_a_title() -> None:
    title = captured("2.1.330/title")
    assert classify_background({**title, "tools": [{"name": "Bash", "input_schema": {}}]}) is None
    schema = title["output_config"]["format"]["schema"]
    wider = {**schema, "properties": {"title": {"type": "string"}, "summary": {"type": "string"}}}
    config = {**title["output_config"], "format": {"type": "json_schema", "schema": wider}}
    assert classify_background({**title, "output_config": config}) is None
    assert classify_background({**title, "output_config": {"effort": "low"}}) is None
