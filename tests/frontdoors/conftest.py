"""Fixtures the OpenAI front door tests share: the OpenAI SDK pointed at the gateway."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.conftest import MASTER_KEY


@pytest.fixture
def oai(gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def chat(oai: openai.OpenAI) -> openai.OpenAI:
    """The same client, by the name the Chat Completions tests give it."""
    return oai
