"""Key guessing on Alpaca, sans-IO: a connection closes after a few failed auths, and an
address that fails often waits before its next answer; the table stays bounded."""

from __future__ import annotations

import logging

import orjson
import pytest

from tickwire.feed.venues import _authguard as ag
from tickwire.feed.venues.alpaca import MAX_AUTH_FAILURES, AlpacaSession
from tickwire.simulators.universe import Universe

NOW = 1_700_000_000 * 10**9
U = Universe.default()
S = ag.NS_PER_S


def _auth(key: str) -> bytes:
    return orjson.dumps({"action": "auth", "key": key, "secret": key})


def _session(failures: ag.AuthFailures, peer: str = "10.0.0.1") -> AlpacaSession:
    s = AlpacaSession("iex", {}, U, ("right",), NOW, failures=failures, peer=peer)
    s.opened(NOW)
    return s


def _codes(reply) -> list[int]:
    return [m.get("code", 0) for f in reply.frames for m in orjson.loads(f.data)]


def test_the_third_failed_auth_closes_the_connection() -> None:
    failures = ag.AuthFailures()
    s = _session(failures)
    replies = [s.receive(_auth(f"guess{i}"), NOW + i) for i in range(MAX_AUTH_FAILURES)]
    assert [_codes(r) for r in replies] == [[402]] * MAX_AUTH_FAILURES
    assert [r.close for r in replies[:-1]] == [None] * (MAX_AUTH_FAILURES - 1)
    assert replies[-1].close is not None and replies[-1].close.code == 1008
    assert failures.total == MAX_AUTH_FAILURES


def test_an_address_that_fails_often_waits_longer_and_longer() -> None:
    failures = ag.AuthFailures()
    now = NOW
    for _ in range(ag.FREE_FAILURES):
        assert failures.due("a", now) == now
        failures.failed("a", now)
    waits = []
    for _ in range(8):
        due = failures.due("a", now)
        waits.append(due - now)
        failures.failed("a", due)
        now = due
    # 0.1 s, then twice as long for each further failure, up to 5 s
    assert waits == [min(ag.MAX_DELAY_NS, ag.BASE_DELAY_NS << k) for k in range(8)]
    # guesses on parallel connections wait in line: one answer per slot
    first, second = failures.due("a", now), failures.due("a", now)
    assert second - first == ag.MAX_DELAY_NS
    assert failures.due("b", now) == now  # another address is not slowed down
    late = failures.due("a", now + 3600 * S)  # an hour later: forgotten
    assert late == now + 3600 * S


def test_a_held_auth_is_answered_at_its_time_even_if_right() -> None:
    failures = ag.AuthFailures()
    for i in range(ag.FREE_FAILURES + 2):
        failures.failed("10.0.0.1", NOW + i)
    s = _session(failures)
    assert s.receive(_auth("right"), NOW + 100).frames == []  # held
    due = s.next_deadline()
    assert due is not None and due > NOW + 100
    assert s.timeout(due - 1).frames == []
    reply = s.timeout(due)
    assert orjson.loads(reply.frames[0].data) == [{"T": "success", "msg": "authenticated"}]
    other = _session(failures, peer="10.0.0.2")  # not this one
    assert other.receive(_auth("right"), NOW + 100).frames != []


def test_the_table_is_bounded_and_the_log_is_summarised(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="tickwire.server")
    failures = ag.AuthFailures()
    for i in range(3 * ag.MAX_ADDRESSES):
        failures.failed(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", NOW + i)
    assert len(failures) == ag.MAX_ADDRESSES
    assert failures.total == 3 * ag.MAX_ADDRESSES
    assert len(caplog.records) == 1  # all within 10 s: one line, the rest counted
    failures.failed("10.9.9.9", NOW + ag.LOG_EVERY_NS)
    assert "more failed auth(s)" in caplog.records[1].getMessage()
    assert len(caplog.records) == 3


def test_wrong_apca_headers_count_as_a_failure() -> None:
    failures = ag.AuthFailures()
    headers = {"APCA-API-KEY-ID": "wrong", "APCA-API-SECRET-KEY": "wrong"}
    s = AlpacaSession("iex", headers, U, ("right",), NOW, failures=failures, peer="10.0.0.3")
    assert [m["msg"] for f in s.opened(NOW).frames for m in orjson.loads(f.data)] == ["connected"]
    assert failures.total == 1
    replies = [s.receive(_auth("guess"), NOW + i) for i in range(MAX_AUTH_FAILURES - 1)]
    assert replies[-1].close is not None  # the headers were the first of the three
