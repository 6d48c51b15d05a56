"""Sessions in signed cookies and the login throttle, by themselves."""

from __future__ import annotations

from modelgate.portal.auth import LoginThrottle, Session, SessionCodec, session_secret


def test_a_session_round_trips_and_keeps_no_key() -> None:
    codec = SessionCodec(session_secret("mg-master"))
    holder = Session.holder("key_abc", codec.stamp("f" * 64))
    value = codec.dumps(holder)
    assert codec.loads(value) == holder
    assert "mg-master" not in value and "f" * 64 not in value
    assert codec.loads(codec.dumps(Session.admin())) is not None
    assert Session.admin().csrf != Session.admin().csrf  # a token per session


def test_altered_foreign_and_expired_cookies_are_refused() -> None:
    codec = SessionCodec(session_secret("mg-master"))
    value = codec.dumps(Session.admin())
    assert codec.loads(value[:-2] + ("AA" if value[-2:] != "AA" else "BB")) is None
    assert codec.loads(None) is None and codec.loads("") is None and codec.loads("garbage") is None
    assert SessionCodec(session_secret("mg-other")).loads(value) is None
    assert SessionCodec(session_secret("mg-master"), max_age=-1).loads(value) is None  # expired


def test_csrf_tokens_compare_whole() -> None:
    session = Session.anonymous()
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None) and not session.csrf_ok("") and not session.csrf_ok(session.csrf[:-1])


def test_the_throttle_counts_failures_per_address_in_a_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(limit=3, window=60, max_addresses=2, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait("10.0.0.1") == 0.0
        throttle.failed("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 60.0
    assert throttle.wait("10.0.0.2") == 0.0
    now[0] += 30
    assert throttle.wait("10.0.0.1") == 30.0
    now[0] += 30.5
    assert throttle.wait("10.0.0.1") == 0.0  # the oldest failure aged out
    throttle.failed("10.0.0.2")
    throttle.succeeded("10.0.0.2")
    assert throttle.wait("10.0.0.2") == 0.0
    for address in ("a", "b", "c"):
        throttle.failed(address)
    assert len(throttle._failures) == 2  # bounded: the least recent forgotten
