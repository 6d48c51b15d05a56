"""Sessions in signed cookies and the login throttle, by themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from itsdangerous import URLSafeTimedSerializer

from modelgate.portal.auth import LoginThrottle, Session, SessionCodec, session_secret


def test_a_session_round_trips_and_keeps_no_key() -> None:
    codec = SessionCodec(session_secret("mg-master"))
    holder = Session.holder("key_abc", codec.stamp("f" * 64))
    value = codec.dumps(holder)
    assert codec.loads(value) == holder
    assert "mg-master" not in value and "f" * 64 not in value
    assert codec.loads(codec.dumps(Session.admin())) is not None
    assert Session.admin().csrf != Session.admin().csrf  # a token per session


def test_an_admin_users_session_names_the_user_and_needs_its_stamp() -> None:
    codec = SessionCodec(session_secret("mg-master"))
    changed = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    stamp = codec.user_stamp("user_1", changed)
    assert stamp != codec.user_stamp("user_1", changed + timedelta(microseconds=1))  # a new password
    assert stamp != codec.user_stamp("user_2", changed)
    session = Session.admin("user_1", "olivia", stamp)
    assert codec.loads(codec.dumps(session)) == session
    assert (session.role, session.user_id, session.user) == ("admin", "user_1", "olivia")
    assert Session.admin().user_id is None and Session.admin().user is None
    serializer = URLSafeTimedSerializer(session_secret("mg-master"), salt="modelgate.portal.session")
    for data in (
        {"csrf": "t", "role": "admin", "user_id": "user_1", "user": "olivia"},  # no stamp
        {"csrf": "t", "role": "holder", "user_id": "user_1", "user": "olivia", "stamp": "s", "key_id": "k"},
        {"csrf": "t", "role": "admin", "user_id": 7, "user": "olivia", "stamp": "s"},
    ):
        assert codec.loads(serializer.dumps(data)) is None, data


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
