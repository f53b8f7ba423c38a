"""The lag bound of every-update readers, in the hub (no trio, no sockets).

A reader more than `max_lag_s` of event time behind the newest batch gets the latest state of
what changed (conflation, counted), then every update again; a reader that resumed gets every
update it asked for first, however far back, and only then is held to the bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed.hub.hub import Hub, Pending, Subscriber
from tickwire.simulators import Universe
from tickwire.simulators.ticks import TICK_DTYPE

N = 4
MS = 1_000_000


class Feed:
    """A hub fed batch by batch; each batch's updates share its event time `ts_ms`."""

    def __init__(self, max_lag_s: float = 0.1, **hub_args: object) -> None:
        uni = Universe.from_rows(
            [(f"S{i}", f"S{i}", "Tech", 100.0, 0.01, 100, 1.0, "stock") for i in range(N)]
        )
        init = np.zeros(N, TICK_DTYPE)
        init["sym"] = np.arange(N)
        init["bid"], init["ask"] = 99.99, 100.01
        self.hub = Hub(uni, init, max_lag_s=max_lag_s, **hub_args)  # type: ignore[arg-type]
        self.seq = [0] * N
        self.log: list[tuple[int, int]] = []
        self.ends: list[tuple[int, int]] = []  # (end offset, ts in ms) of every batch

    def publish(self, ts_ms: int, *syms: int) -> None:
        batch = np.zeros(len(syms), TICK_DTYPE)
        for i, s in enumerate(syms):
            self.seq[s] += 1
            batch[i] = (ts_ms * MS, self.seq[s], 99.99, 100.01, 100.0, 0, s, 0, 100, 100, 0)
            self.log.append((s, self.seq[s]))
        self.hub.publish(batch)
        self.ends.append((len(self.log), ts_ms))

    def attach(self, wildcard: bool = True, ids: Sequence[int] = ()) -> Subscriber:
        sub = self.hub.attach(lambda: None)
        self.hub.set_subscription(sub, wildcard, np.array(ids, np.intp))
        return sub

    def lag_ms(self, cursor: int) -> int:
        """The model: event time from the batch holding `cursor` to the newest batch."""
        if cursor >= len(self.log):
            return 0
        holding = next(ts for end, ts in self.ends if end > cursor)
        return self.ends[-1][1] - holding


def pairs(pending: Pending | None) -> list[tuple[int, int]]:
    assert pending is not None
    return list(zip(pending.records["sym"].tolist(), pending.records["seq"].tolist(), strict=True))


def test_a_reader_past_the_bound_gets_the_latest_state_then_every_update():
    f = Feed(max_lag_s=0.1)
    sub = f.attach()
    f.publish(0, 0, 1)
    f.publish(50, 0, 2)
    assert pairs(f.hub.take(sub)) == f.log  # 50 ms behind: within the bound
    f.publish(100, 0, 1)
    f.publish(150, 1)
    f.publish(250, 0, 3)  # its oldest pending batch (100 ms) is now 150 ms old
    pending = f.hub.take(sub)
    assert pairs(pending) == [(0, 4), (1, 3), (3, 1)]  # the latest state, by symbol
    assert pending.conflated == 2 and sub.ticks_conflated == 2
    assert pending.offset == f.hub.history.head
    f.publish(260, 3, 3)
    assert pairs(f.hub.take(sub)) == [(3, 2), (3, 3)]  # every update again
    assert f.hub.take(sub) is None


def test_a_reader_within_the_bound_is_never_conflated():
    f = Feed(max_lag_s=0.1)
    sub = f.attach()
    for t in range(0, 101, 10):  # exactly 100 ms behind at the end: not past the bound
        f.publish(t, t % N)
    assert pairs(f.hub.take(sub)) == f.log and sub.ticks_conflated == 0


def test_one_batch_that_spans_more_than_the_bound_does_not_count():
    f = Feed(max_lag_s=0.1, max_take=2)
    sub = f.attach()
    batch = np.zeros(4, TICK_DTYPE)  # one batch whose records span 3 s (a replay at speed 0)
    for i in range(4):
        batch[i] = (i * 1000 * MS, 1, 99.99, 100.01, 100.0, 0, i, 0, 100, 100, 0)
    f.hub.publish(batch)
    got = pairs(f.hub.take(sub)) + pairs(f.hub.take(sub))
    assert got == [(i, 1) for i in range(4)] and sub.ticks_conflated == 0


def test_quiet_symbols_do_not_make_their_reader_lag():
    f = Feed(max_lag_s=0.1)
    sub = f.attach(wildcard=False, ids=[3])
    for t in range(0, 1000, 10):  # a second of updates to other symbols, never taken
        f.publish(t, 0, 1)
    f.publish(1000, 3, 3)
    assert pairs(f.hub.take(sub)) == [(3, 1), (3, 2)] and sub.ticks_conflated == 0


def test_an_explicit_reader_behind_on_its_own_symbols_is_bounded_too():
    f = Feed(max_lag_s=0.1)
    sub = f.attach(wildcard=False, ids=[1])
    f.publish(0, 1)
    f.publish(10, 0)
    f.publish(500, 1)
    pending = f.hub.take(sub)
    assert pairs(pending) == [(1, 2)] and pending.conflated == 1


def test_a_resumed_reader_gets_everything_it_missed_then_the_bound_applies():
    f = Feed(max_lag_s=0.1, max_take=50)
    for t in range(0, 3000, 10):  # 3 s of updates, far past the bound
        f.publish(t, t % N)
    sub = f.attach()
    missed = f.hub.resume(sub, f.hub.epoch, 7)
    got = pairs(f.hub.take(sub))
    f.publish(3000, 1)  # live data arrives while it catches up
    while (pending := f.hub.take(sub)) is not None:
        got += pairs(pending)
    assert missed == len(f.log) - 8 and got == f.log[7:]
    assert sub.ticks_conflated == 0
    for t in range(3010, 3300, 10):  # now it lags again: the bound is back
        f.publish(t, 1)
    assert f.hub.take(sub).conflated > 0  # type: ignore[union-attr]


def test_a_zero_bound_leaves_only_the_history_window():
    f = Feed(max_lag_s=0)
    sub = f.attach()
    for t in range(0, 5000, 100):
        f.publish(t, 0)
    assert pairs(f.hub.take(sub)) == f.log and sub.ticks_conflated == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("publish"),
                st.integers(0, 80),  # ms since the previous batch
                st.lists(st.integers(0, N - 1), min_size=1, max_size=5),
            ),
            st.tuples(st.just("take"), st.just(0), st.just([0])),
            st.tuples(st.just("resume"), st.integers(0, 1000), st.just([0])),
        ),
        max_size=60,
    ),
    st.sampled_from([2, 1000]),
)
def test_the_bound_against_a_model(ops, max_take):
    """Each take delivers every update in order unless the reader was past the bound (measured
    from the batch holding its cursor) after it caught up with a resume: then the latest state."""
    f = Feed(max_lag_s=0.1, max_take=max_take)
    sub = f.attach()
    have = [0] * N
    cursor, catch_up_to, now_ms = 0, 0, 0
    for op, arg, syms in ops:
        if op == "publish":
            now_ms += arg
            f.publish(now_ms, *syms)
            continue
        if op == "resume":
            cursor = arg % (len(f.log) + 1)
            assert f.hub.resume(sub, f.hub.epoch, cursor) == len(f.log) - cursor
            have = [0] * N
            for s, q in f.log[:cursor]:
                have[s] = q
            catch_up_to = len(f.log)
            continue
        past = cursor >= catch_up_to and f.lag_ms(cursor) > 100
        pending = f.hub.take(sub)
        if pending is None:
            assert cursor == len(f.log)
            continue
        got = pairs(pending)
        if past:
            assert len({s for s, _ in got}) == len(got) and pending.offset == len(f.log)
            assert pending.conflated == sum(q - have[s] - 1 for s, q in got)
        else:
            assert got == f.log[cursor : pending.offset] and pending.conflated == 0
        for s, q in got:
            assert q > have[s]
            have[s] = q
        cursor = pending.offset
