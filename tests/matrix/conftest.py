"""Fixtures of the protocol matrix: one SDK-backed client per front door.

The gateway and the fake upstream are the session fixtures of ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.matrix.doors import DOOR_CLASSES, Door
from tests.matrix.upstreams import DOORS, KINDS, UPSTREAMS, Upstream


def cells(xfail: dict[tuple[str, str], str] | None = None) -> list:
    """Every (front door, upstream kind) pair, ids ``door-kind``; ``xfail`` marks known gateway bugs."""
    xfail = xfail or {}
    out = []
    for door in DOORS:
        for kind in KINDS:
            marks = [pytest.mark.xfail(strict=True, reason=xfail[door, kind])] if (door, kind) in xfail else []
            out.append(pytest.param(door, kind, id=f"{door}-{kind}", marks=marks))
    return out


@pytest.fixture
def door(gateway, door_name: str) -> Iterator[Door]:
    d = DOOR_CLASSES[door_name](gateway)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def upstream_kind(kind: str) -> Upstream:
    return UPSTREAMS[kind]
