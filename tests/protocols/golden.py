"""Golden fixtures for the codec tests, and IR objects as JSON: one implementation for every
protocol's test package, each binding it to its own ``fixtures`` folder (see its ``helpers``).

Fixtures live in ``fixtures/<kind>/<case>.json``. Run with ``MODELGATE_REGEN=1`` to rewrite the
expected values, then review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import orjson

from modelgate.errors import GatewayError, UpstreamHTTPError

REGEN = os.environ.get("MODELGATE_REGEN") == "1"


def as_json(x: Any) -> Any:
    """IR objects (and gateway errors) as plain JSON, tagged with their class name."""
    if isinstance(x, GatewayError):
        out = {"class": type(x).__name__, "message": x.message, "status": x.status, "kind": x.kind}
        if isinstance(x, UpstreamHTTPError):
            out.update(protocol=x.protocol, param=x.param, body=x.body)
        return out
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {"class": type(x).__name__, **{f.name: as_json(getattr(x, f.name)) for f in dataclasses.fields(x)}}
    if isinstance(x, list):
        return [as_json(v) for v in x]
    if isinstance(x, dict):
        return {k: as_json(v) for k, v in x.items()}
    return x


@dataclasses.dataclass(frozen=True, slots=True)
class Golden:
    """The golden fixtures below one ``fixtures`` folder."""

    fixtures: Path

    def load(self, kind: str, name: str) -> Any:
        return orjson.loads((self.fixtures / kind / f"{name}.json").read_bytes())

    def check(self, kind: str, name: str, actual: Any, key: str | None = None) -> None:
        """Compare with the fixture (or its ``key``); with MODELGATE_REGEN=1 write it instead."""
        path = self.fixtures / kind / f"{name}.json"
        if REGEN:
            data = orjson.loads(path.read_bytes()) if key else None
            if key:
                data[key] = actual
            path.write_bytes(orjson.dumps(data if key else actual, option=orjson.OPT_INDENT_2) + b"\n")
            return
        expected = self.load(kind, name)
        assert actual == (expected[key] if key else expected)

    def names(self, kind: str) -> list[str]:
        return sorted(p.stem for p in (self.fixtures / kind).glob("*.json"))
