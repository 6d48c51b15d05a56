"""The Responses codec tests' golden fixtures (``fixtures/<kind>/<case>.json``): see :mod:`tests.protocols.golden`."""

from __future__ import annotations

from pathlib import Path

from tests.protocols.golden import Golden, as_json

GOLDEN = Golden(Path(__file__).parent / "fixtures")
load, check, names = GOLDEN.load, GOLDEN.check, GOLDEN.names

__all__ = ["as_json", "check", "load", "names"]
