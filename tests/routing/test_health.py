"""The breaker of a deployment (``routing/health.py``): open after N failures in a row, aside
for the cool-off, tried again after it (one more failure opens it again at once, one success
closes it)."""

from __future__ import annotations

import logging

import pytest

from modelgate.routing.health import DeploymentHealth


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_and_closes_on_success(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = DeploymentHealth("sonnet", "anth", "claude-sonnet-4-6", threshold=3, cooloff=30, clock=clock)
    health.failed()
    health.failed()
    assert not health.is_open(clock.now) and health.state()["state"] == "closed"
    with caplog.at_level(logging.WARNING, logger="modelgate.health"):
        health.failed()
    assert health.is_open(clock.now)
    assert health.state() == {
        "model": "sonnet",
        "provider": "anth",
        "upstream_model": "claude-sonnet-4-6",
        "state": "open",
        "failures": 3,
        "seconds_left": 30.0,
    }
    assert [r.getMessage() for r in caplog.records] == [
        "deployment claude-sonnet-4-6 of sonnet (provider anth) failed 3 times in a row: set aside for 30 s"
    ]
    clock.now += 30
    assert not health.is_open(clock.now) and health.state()["state"] == "half-open"
    health.failed()  # the probe failed: aside again at once
    assert health.is_open(clock.now)
    clock.now += 31
    health.ok(latency=0.2)
    assert (health.failures, health.open_until, health.state()["state"]) == (0, 0.0, "closed")
    assert health.state()["latency_ms"] == 200.0


def test_a_success_between_failures_starts_the_count_again() -> None:
    health = DeploymentHealth("m", "p", "u", threshold=2)
    health.failed()
    health.ok()
    health.failed()
    assert health.open_until == 0.0


def test_latency_is_a_moving_average() -> None:
    health = DeploymentHealth("m", "p", "u")
    health.ok(1.0)
    health.ok(2.0)
    assert health.latency == pytest.approx(1.2)


# --------------------------------------------------------------------------- shared with other instances


class Reported:
    def __init__(self) -> None:
        self.changes: list[tuple[str, float | None]] = []

    def key_rested(self, pool: object, key_id: str, reason: str, seconds: float) -> None:
        raise AssertionError("not a pool")

    def breaker_opened(self, health: DeploymentHealth, seconds: float) -> None:
        self.changes.append(("open", seconds))

    def breaker_closed(self, health: DeploymentHealth) -> None:
        self.changes.append(("close", None))


def test_openings_and_closings_decided_here_are_reported_once_each() -> None:
    clock = Clock()
    events = Reported()
    health = DeploymentHealth("sonnet", "anth", "claude-sonnet-4-6", threshold=2, cooloff=30, clock=clock)
    health.listeners.append(events)  # type: ignore[arg-type]  # only the methods a breaker calls
    health.failed()
    health.failed()
    health.failed()  # open already: not an opening
    assert events.changes == [("open", 30.0)]
    clock.now += 31
    health.failed()  # half-open: opens again
    health.ok()
    health.ok()  # closed already: not a closing
    assert events.changes == [("open", 30.0), ("open", 30.0), ("close", None)]


def test_an_opening_or_closing_from_elsewhere_is_applied_and_never_reported() -> None:
    clock = Clock()
    events = Reported()
    health = DeploymentHealth("sonnet", "anth", "claude-sonnet-4-6", threshold=3, cooloff=30, clock=clock)
    health.listeners.append(events)  # type: ignore[arg-type]
    health.apply_open(12)
    assert health.state() == {
        "model": "sonnet",
        "provider": "anth",
        "upstream_model": "claude-sonnet-4-6",
        "state": "open",
        "failures": 3,
        "seconds_left": 12.0,
        "remote": True,
    }
    health.apply_open(5)  # shorter than what is held: nothing changes
    assert health.state()["seconds_left"] == 12.0
    health.apply_close()
    assert health.state()["state"] == "closed" and health.failures == 0
    assert events.changes == []
