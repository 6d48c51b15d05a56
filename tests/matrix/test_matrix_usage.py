"""The protocol matrix, (f) usage in every cell, non-streamed and streamed.

The fake's counts are overridden (``usage`` script: input, output, cache read, cache write)
so that every field is told apart. The upstream encodes them in its own shape
(``modelgate.testing.fake_*.encode_usage``), the gateway decodes them to the IR and the
client must see them in its own usage fields:

- Anthropic: ``input_tokens`` (without cache), ``output_tokens``,
  ``cache_read_input_tokens``, ``cache_creation_input_tokens``;
- Chat: ``prompt_tokens`` = input + cache read + cache write, ``completion_tokens``,
  ``total_tokens``, ``prompt_tokens_details.cached_tokens`` = cache read and
  ``.cache_write_tokens`` = cache write;
- Responses: the same with ``input_tokens`` / ``output_tokens`` /
  ``input_tokens_details.cached_tokens`` / ``.cache_write_tokens``;
- Gemini: ``promptTokenCount`` (cache included), ``candidatesTokenCount``,
  ``totalTokenCount``, ``cachedContentTokenCount`` = cache read.

Cache *writes* survive only from upstreams that report them apart (Anthropic, OpenAI's
Responses API): the fake's Chat Completions answers (like OpenAI's) and Gemini's count them
inside the prompt with no field of their own, so through them every client sees them as
plain input (``Upstream.ir_usage``); the totals do not change.
"""

from __future__ import annotations

import pytest

from tests.matrix.conftest import cells
from tests.matrix.upstreams import UPSTREAMS

PROMPT = "Count my tokens."
INPUT, OUTPUT, READ, WRITE = 1234, 56, 300, 40
USAGE = {
    "input_tokens": INPUT,
    "output_tokens": OUTPUT,
    "cache_read_input_tokens": READ,
    "cache_creation_input_tokens": WRITE,
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_usage_with_cache_reads(door, fake, door_name: str, kind: str, stream: bool) -> None:
    up = UPSTREAMS[kind]
    fake.script(usage=USAGE)
    answer = door.stream(up.model, PROMPT) if stream else door.complete(up.model, PROMPT)
    assert answer.usage == door.expected_usage(*up.ir_usage_for(door_name, INPUT, OUTPUT, READ, WRITE))
    assert fake.last_request()["path"] == up.path(door_name, stream=stream)
