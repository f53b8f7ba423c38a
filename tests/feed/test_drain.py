"""The graceful drain's schedule: closes spread over drain_s, a second signal stops at once."""

from __future__ import annotations

import pytest

from tickwire.feed._drain import GRACE_S, Drain, Phase, close_offsets


def test_offsets_are_evenly_spread_inside_the_drain() -> None:
    assert close_offsets(4, 10.0) == [0.0, 2.5, 5.0, 7.5]
    assert close_offsets(0, 10.0) == []
    assert close_offsets(3, 0.0) == [0.0, 0.0, 0.0]
    offsets = close_offsets(1000, 10.0)
    assert max(offsets) < 10.0 and offsets == sorted(offsets)
    with pytest.raises(ValueError, match="drain_s must be >= 0"):
        close_offsets(1, -1)


def test_ready_until_the_first_signal() -> None:
    drain: Drain[str] = Drain(10.0)
    assert drain.ready and drain.next_deadline() is None and drain.due(100.0) == []
    assert drain.signal(100.0, ["a", "b"]) is Phase.DRAINING
    assert not drain.ready and not drain.done


def test_clients_close_one_at_a_time_oldest_first() -> None:
    drain: Drain[str] = Drain(10.0)
    drain.signal(100.0, ["old", "mid", "new", "newest"])
    assert drain.due(100.0) == ["old"]
    assert drain.due(100.0) == []  # each client is handed out once
    assert drain.next_deadline() == 102.5
    assert drain.due(104.9) == ["mid"]
    assert drain.due(110.0) == ["new", "newest"]  # a late wake-up catches up
    assert drain.next_deadline() == 110.0 + GRACE_S
    for c in ("old", "mid", "new"):
        drain.gone(c)
    assert not drain.done
    drain.gone("newest")
    assert drain.done and drain.next_deadline() is None


def test_a_client_that_left_by_itself_is_skipped() -> None:
    drain: Drain[int] = Drain(3.0)
    drain.signal(0.0, [1, 2, 3])
    drain.gone(2)
    assert drain.due(0.0) == [1]
    assert drain.due(5.0) == [3]


def test_second_signal_closes_all_remaining_at_once() -> None:
    drain: Drain[str] = Drain(10.0)
    drain.signal(0.0, ["a", "b", "c"])
    assert drain.due(0.0) == ["a"]
    assert drain.signal(1.0, []) is Phase.STOPPED
    assert drain.done and drain.due(1.0) == ["b", "c"]


def test_no_clients_means_done_at_once() -> None:
    drain: Drain[str] = Drain(10.0)
    drain.signal(0.0, [])
    assert drain.done


def test_a_client_ignoring_its_close_does_not_hold_the_exit() -> None:
    drain: Drain[str] = Drain(1.0)
    drain.signal(0.0, ["stuck"])
    assert drain.due(0.0) == ["stuck"]
    assert drain.next_deadline() == 1.0 + GRACE_S
    assert drain.due(1.0 + GRACE_S) == []
    assert drain.done


def test_zero_drain_closes_everyone_at_once() -> None:
    drain: Drain[str] = Drain(0.0)
    drain.signal(5.0, ["a", "b"])
    assert drain.due(5.0) == ["a", "b"]
