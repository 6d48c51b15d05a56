"""The protocol matrix, (d) an image in every cell.

A small PNG in the client's own image shape (Anthropic base64 ``image`` block, Chat
``image_url`` data URL, Responses ``input_image`` data URL, Gemini ``inlineData``) must reach
the upstream in the upstream's own image shape with the same bytes and media type.

The PNG's standard base64 holds both ``+`` and ``/``, so the url-safe alphabet google-genai
sends differs from it: a Gemini client's image must be re-written in the standard alphabet
for other upstreams (Anthropic refuses url-safe base64), and pass untouched to Gemini.
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from modelgate.testing.reply import ECHO_PREFIX
from tests.matrix.conftest import cells
from tests.matrix.upstreams import PASSTHROUGH, UPSTREAMS, b64decode_any, images

PROMPT = "What is in this picture?"


def tiny_png(rgb: tuple[int, int, int] = (173, 128, 64)) -> bytes:
    """A valid 2×2 RGB PNG, deterministic."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


PNG = tiny_png()
B64 = base64.b64encode(PNG).decode()


def test_the_png_exercises_both_base64_alphabets() -> None:
    assert "+" in B64 and "/" in B64


@pytest.mark.parametrize(("door_name", "kind"), cells())
def test_image(door, fake, door_name: str, kind: str) -> None:
    up = UPSTREAMS[kind]
    answer = door.image(up.model, PROMPT, PNG)
    assert answer.text == ECHO_PREFIX + PROMPT

    record = fake.last_request(up.path(door_name, stream=False))
    found = images(up.protocol(door_name), record["body"])
    assert len(found) == 1
    media_type, data = found[0]
    assert media_type == "image/png"
    assert b64decode_any(data) == PNG
    if door_name == "gemini":  # google-genai writes bytes url-safe
        assert base64.urlsafe_b64encode(PNG) in door.last_sent.content
    if (door_name, kind) not in PASSTHROUGH:
        assert data == B64  # translated: the standard alphabet every upstream reads
