"""``GET /v1/usage``: a key holder's own view of its budgets and limits.

For each budget window of the caller's key (and of its team): the amount used, the limit,
the percentage used and when capacity next frees, read live from the counters (so it
includes calls still running); then the key's request limits and their current counts.
That is what Antex-style dashboards draw as percentage bars. The key is read from the same
places as on the model endpoints; a refusal comes in the envelope of the protocol whose
place held the key (Gemini's for ``x-goog-api-key`` or ``?key=``, OpenAI's for a bearer
token, Anthropic's otherwise).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate.counters.base import CONCURRENT
from modelgate.errors import GatewayError
from modelgate.frontdoors.base import FrontDoor
from modelgate.pipeline.admit import Admission
from modelgate.pipeline.context import new_request_id
from modelgate.policy.auth import Principal
from modelgate.policy.limits import BUDGET_WINDOWS, PER_MINUTE, Owner
from modelgate.policy.tenancy import Tenancy
from modelgate.protocols import WireProtocol
from modelgate.store import Budget


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch is not None else None


class UsageEndpoint:
    def __init__(self, admission: Admission, tenancy: Tenancy, doors: dict[WireProtocol, FrontDoor]) -> None:
        self.admission = admission
        self.tenancy = tenancy
        self.doors = doors

    def routes(self) -> list[Route]:
        return [Route(path, self.usage, methods=["GET"]) for path in ("/v1/usage", "/usage")]

    def door_for(self, request: Request) -> FrontDoor:
        headers = request.headers
        if headers.get("x-goog-api-key") or request.query_params.get("key"):
            return self.doors[WireProtocol.GEMINI]
        if headers.get("x-api-key") or not headers.get("authorization"):
            return self.doors[WireProtocol.ANTHROPIC]
        return self.doors[WireProtocol.OPENAI_CHAT]

    async def usage(self, request: Request) -> Response:
        door = self.door_for(request)
        request_id = new_request_id()
        try:
            caller = await self.admission.authenticate(request, door)
        except GatewayError as e:
            return door.error_response(e, request_id)
        body = await self.report(caller, time.time())
        return Response(orjson.dumps(body), media_type="application/json", headers={door.request_id_header: request_id})

    async def report(self, caller: Principal, now: float) -> dict[str, Any]:
        key, team = caller.key, caller.team
        windows: list[dict[str, Any]] = []
        limits: dict[str, Any] = {}
        if key is not None:
            owner = Owner("key", key.id, key.name)
            windows += [await self.window(owner, b, now) for b in key.budgets]
            limits = await self.limits(owner, (key.rpm, key.tpm, key.concurrency), now)
            if key.max_tokens is not None:
                limits["max_tokens"] = key.max_tokens
        if team is not None:
            owner = Owner("team", team.id, team.name)
            windows += [await self.window(owner, b, now) for b in team.budgets]
            team_limits = await self.limits(owner, (team.rpm, team.tpm, team.concurrency), now)
            if team_limits:
                limits["team"] = team_limits
        return {
            "object": "usage",
            "key": {"name": key.name if key else "master", "team": team.name if team else None},
            "windows": windows,
            "limits": limits,
        }

    async def window(self, owner: Owner, budget: Budget, now: float) -> dict[str, Any]:
        win = BUDGET_WINDOWS[budget.window]
        out: dict[str, Any] = {"window": budget.window, "owner": owner.kind}
        percents: list[float] = []
        frees: list[float] = []
        for unit, limit in (("usd", budget.usd), ("credits", budget.credits)):
            if limit is None:
                continue
            state = await self.tenancy.counters.state(owner.scope(f"{unit}:{budget.window}"), win, now)
            out[f"used_{unit}"] = round(state.used, 6)
            out[f"limit_{unit}"] = limit
            percents.append(min(100.0, 100.0 * state.used / limit) if limit > 0 else 100.0)
            if state.next_free_at is not None:
                frees.append(state.next_free_at)
        out["used_percent"] = round(max(percents), 2) if percents else 0.0
        out["next_free_at"] = _iso(min(frees)) if frees else None
        return out

    async def limits(
        self, owner: Owner, values: tuple[int | None, int | None, int | None], now: float
    ) -> dict[str, Any]:
        rpm, tpm, concurrency = values
        counters = self.tenancy.counters
        out: dict[str, Any] = {}
        for name, limit in (("rpm", rpm), ("tpm", tpm)):
            if limit is not None:
                state = await counters.state(owner.scope(name), PER_MINUTE, now)
                out[name] = {"limit": limit, "used": round(state.used), "next_free_at": _iso(state.next_free_at)}
        if concurrency is not None:
            state = await counters.state(owner.scope("concurrency"), CONCURRENT, now)
            out["concurrency"] = {"limit": concurrency, "active": round(state.used)}
        return out
