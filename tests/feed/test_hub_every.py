"""Every-update delivery, the history window and resume, in the hub (no trio, no sockets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed import protocol as p
from tickwire.feed.hub.every import last_of
from tickwire.feed.hub.history import ENTRY_BYTES
from tickwire.feed.hub.hub import Hub, Pending, Subscriber
from tickwire.simulators import Market, Universe
from tickwire.simulators.ticks import TICK_DTYPE

N = 5


def universe(n: int = N) -> Universe:
    return Universe.from_rows(
        [(f"S{i}", f"Name {i}", "Tech", 100.0, 0.01, 100, 1.0, "stock") for i in range(n)]
    )


class Feed:
    """A hub fed with numbered updates: symbol s's k-th update has seq k and ts 1000 * k."""

    def __init__(self, **hub_args: Any) -> None:
        init = np.zeros(N, TICK_DTYPE)
        init["sym"] = np.arange(N)
        init["bid"], init["ask"] = 99.99, 100.01
        self.hub = Hub(universe(), init, **hub_args)
        self.seq = [0] * N
        self.ts = 0
        self.log: list[tuple[int, int]] = []  # (sym, seq) of every update, in publish order

    def publish(self, *syms: int) -> None:
        batch = np.zeros(len(syms), TICK_DTYPE)
        for i, s in enumerate(syms):
            self.seq[s] += 1
            self.ts += 1_000_000
            batch[i] = (self.ts, self.seq[s], 99.99, 100.01, 100.0, 0, s, 0, 100, 100, 0)
            self.log.append((s, self.seq[s]))
        self.hub.publish(batch)

    def attach(self, wildcard: bool = False, ids: Sequence[int] = ()) -> Subscriber:
        sub = self.hub.attach(lambda: None)
        self.hub.set_subscription(sub, wildcard, np.array(ids, np.intp))
        return sub

    def drain(self, sub: Subscriber) -> list[tuple[int, int]]:
        got: list[tuple[int, int]] = []
        while (pending := self.hub.take(sub)) is not None:
            got += pairs(pending)
            assert pending.json_body() == p.ticks_body(pending.records, self.hub.names)
        assert not self.hub.has_more(sub)
        return got


def pairs(pending: Pending | None) -> list[tuple[int, int]]:
    assert pending is not None
    return list(zip(pending.records["sym"].tolist(), pending.records["seq"].tolist(), strict=True))


def test_every_update_in_order_each_once():
    f = Feed()
    wild, some = f.attach(True), f.attach(ids=[1, 3])
    f.publish(0, 1, 1, 3, 0)
    f.publish(1)
    assert f.drain(wild) == f.log
    assert f.drain(some) == [(1, 1), (1, 2), (3, 1), (1, 3)]
    f.publish(2, 3)
    assert f.drain(wild) == [(2, 1), (3, 2)]
    assert f.drain(some) == [(3, 2)]
    assert wild.ticks_conflated == some.ticks_conflated == 0


def test_a_take_stops_at_max_take_and_the_rest_follows():
    f = Feed(max_take=3)
    wild = f.attach(True)
    f.publish(0, 1, 2, 3, 4)
    f.publish(0, 1)
    first = f.hub.take(wild)
    assert pairs(first) == f.log[:3] and first.offset == 3
    assert f.hub.has_more(wild)
    assert f.drain(wild) == f.log[3:]


def test_a_subscriber_that_falls_out_of_the_window_gets_the_latest_state_counted():
    f = Feed(history_bytes=2 * (2 * 64 + ENTRY_BYTES))  # two batches of two records
    wild = f.attach(True)
    for _ in range(3):
        f.publish(0, 1)
    pending = f.hub.take(wild)
    assert pairs(pending) == [(0, 3), (1, 3)]
    assert pending.conflated == 4 and wild.ticks_conflated == 4
    f.publish(0)
    assert f.drain(wild) == [(0, 4)]  # back on every update once it is in the window again


def test_latest_mode_and_back():
    f = Feed()
    sub = f.attach(True)
    f.hub.set_mode(sub, latest=True)
    f.publish(0, 0, 1)
    assert pairs(f.hub.take(sub)) == [(0, 2), (1, 1)] and sub.ticks_conflated == 1
    f.hub.set_mode(sub, latest=False)
    f.publish(0, 0)
    assert f.drain(sub) == [(0, 3), (0, 4)]


def test_snapshot_then_every_update_never_repeats():
    f = Feed()
    sub = f.attach(ids=[0])
    f.publish(1, 1)  # behind by one batch when it subscribes to more
    f.hub.set_subscription(sub, False, np.array([0, 1], np.intp))
    snap = f.hub.snapshot(sub, np.array([1], np.intp))
    assert pairs(snap) == [(1, 2)] and snap.offset == 0
    f.publish(1, 0)
    assert f.drain(sub) == [(1, 3), (0, 1)]


def test_wildcard_subscribers_at_one_cursor_share_one_take_and_one_body():
    f = Feed()
    subs = [f.attach(True) for _ in range(3)]
    f.publish(0, 1, 2)
    taken = [f.hub.take(s) for s in subs]
    assert taken[1] is taken[0] and taken[2] is taken[0]
    assert taken[0].json_body() is taken[1].json_body()
    assert taken[0].records.base is not None  # a view of the published batch, not a copy


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.lists(st.integers(0, N - 1), min_size=1, max_size=6)),
        st.tuples(st.just("take"), st.integers(0, 2)),
        st.tuples(st.just("snapshot"), st.integers(0, 2), st.sets(st.integers(0, N - 1))),
        st.tuples(st.just("mode"), st.integers(0, 2), st.booleans()),
    ),
    max_size=50,
)


@settings(max_examples=80, deadline=None)
@given(OPS, st.sampled_from([2, 5, 1000]), st.sampled_from([64 * 6, 1 << 20]))
def test_every_update_against_a_model(ops, max_take, history_bytes):
    """Each update reaches a subscriber once, in order, or is counted as conflated; never twice."""
    f = Feed(max_take=max_take, history_bytes=history_bytes)
    held = [set(range(N)), set(range(N)), {0, 2}]
    subs = [f.attach(True), f.attach(True), f.attach(ids=[0, 2])]
    have = [[0] * N for _ in subs]  # the seq each subscriber holds, per symbol
    conflated = [0] * len(subs)
    for op in ops:
        if op[0] == "publish":
            f.publish(*op[1])
        elif op[0] == "take":
            k = op[1]
            pending = f.hub.take(subs[k])
            if pending is None:
                continue
            skipped = 0
            for s, seq in pairs(pending):
                assert s in held[k] and seq > have[k][s]
                if not subs[k].latest and pending.conflated == 0:
                    assert seq == have[k][s] + 1  # every update: no jump at all
                skipped += seq - have[k][s] - 1
                have[k][s] = seq
            assert skipped == pending.conflated
            conflated[k] += skipped
            assert pending.offset <= f.hub.history.head
        elif op[0] == "snapshot":
            k, ids = op[1], sorted(op[2])
            pending = f.hub.snapshot(subs[k], np.array(ids, np.intp))
            for s, seq in pairs(pending):
                have[k][s] = seq
        else:
            f.hub.set_mode(subs[op[1]], op[2])
    for k, sub in enumerate(subs):
        # Whatever happened, draining now brings each subscriber to the latest state.
        while (pending := f.hub.take(sub)) is not None:
            for s, seq in pairs(pending):
                conflated[k] += seq - have[k][s] - 1
                have[k][s] = seq
        assert [have[k][s] for s in sorted(held[k])] == [f.seq[s] for s in sorted(held[k])]
        assert sub.ticks_conflated == conflated[k]


# --------------------------------------------------------------------------- resume


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, N - 1), min_size=1, max_size=5), min_size=1, max_size=20),
    st.integers(0, 100),
    st.sampled_from([(True, ()), (False, (0,)), (False, (1, 3, 4))]),
    st.sampled_from([2, 1000]),
)
def test_resume_delivers_exactly_the_updates_after_the_offset(batches, at, sub_args, max_take):
    f = Feed(max_take=max_take)
    for b in batches:
        f.publish(*b)
    offset = at % (f.hub.history.head + 1)
    wildcard, ids = sub_args
    held = set(range(N)) if wildcard else set(ids)
    want = [(s, q) for s, q in f.log[offset:] if s in held]
    sub = f.attach(wildcard, ids)
    assert f.hub.resume(sub, f.hub.epoch, offset) == len(want)
    assert f.drain(sub) == want
    assert sub.ticks_conflated == 0
    for s, q in dict(want).items():  # it ends holding each symbol's latest update
        assert sub.seq_of(s) == q


def test_resume_refuses_another_epoch_and_positions_out_of_the_window():
    f = Feed(history_bytes=2 * 64 + ENTRY_BYTES)  # one batch of two records
    for _ in range(3):
        f.publish(0, 1)
    sub = f.attach(True)
    assert f.hub.resume(sub, "0" * 16, 6) is None
    assert f.hub.resume(sub, f.hub.epoch, 7) is None  # not yet published
    assert f.hub.resume(sub, f.hub.epoch, 1) is None  # evicted
    assert f.hub.history.oldest == 4
    assert f.hub.resume(sub, f.hub.epoch, 4) == 2
    assert f.drain(sub) == [(0, 3), (1, 3)]


def test_resume_in_latest_mode_gets_the_latest_state_of_what_changed():
    f = Feed()
    f.publish(0, 1)
    f.publish(0, 0)
    sub = f.attach(True)
    f.hub.set_mode(sub, latest=True)
    assert f.hub.resume(sub, f.hub.epoch, 2) == 2
    pending = f.hub.take(sub)
    assert pairs(pending) == [(0, 3)] and pending.conflated == 1


# --------------------------------------------------------------------------- with the market


@pytest.mark.parametrize("ticks", [(0.01,), (0.25, 5.0, 0.005, 0.01)])
def test_market_batches_are_already_on_the_grid_so_the_hub_keeps_them_as_they_are(ticks):
    rows = [(f"S{i}", f"S{i}", "X", 50.0 + i, t, 100, 3.0, "stock") for i, t in enumerate(ticks)]
    uni = Universe.from_rows(rows)
    market = Market(uni, seed=4, start_ns=0)
    hub = Hub(uni, market.snapshot())
    for step in range(1, 40):
        batch = market.step(step * 50_000_000)
        if not len(batch):
            continue
        rounded = batch.copy()
        hub._normalise(rounded)  # the hub's own rule, applied to a copy
        assert rounded.tobytes() == batch.tobytes()
        hub.publish(batch, on_grid=True)
    assert np.array_equal(hub.lvc, market.snapshot())


def test_a_fast_subscriber_on_the_default_market_sees_no_seq_jump_over_5_s():
    uni = Universe.default()
    market = Market(uni, seed=1, start_ns=0)
    hub = Hub(uni, market.snapshot())
    wild, some = hub.attach(lambda: None), hub.attach(lambda: None)
    hub.set_subscription(wild, True, np.empty(0, np.intp))
    hub.set_subscription(some, False, np.array([0, 5], np.intp))
    have = market.snapshot()["seq"].copy()
    delivered = 0
    for ms in range(1, 5001):
        hub.publish(market.step(ms * 1_000_000), on_grid=True)
        pending = hub.take(wild)
        if pending is not None:
            recs = pending.records
            for s, q in zip(recs["sym"].tolist(), recs["seq"].tolist(), strict=True):
                assert q == have[s] + 1
                have[s] = q
            delivered += len(pending.records)
        hub.take(some)
    assert delivered == hub.ticks_published > 5000
    assert wild.ticks_conflated == 0 and some.ticks_conflated == 0
    assert np.array_equal(have, hub.lvc["seq"])


def test_caught_up_means_some_reader_and_none_behind():
    f = Feed()
    assert not f.hub.caught_up()  # nobody reads yet: a paced replay waits
    idle = f.hub.attach(lambda: None)  # attached, no symbols: not a reader
    wild, some = f.attach(True), f.attach(ids=[1])
    assert f.hub.caught_up()
    f.publish(0)
    assert not f.hub.caught_up()  # wild has news; some does not
    f.drain(wild)
    assert f.hub.caught_up()
    f.publish(1)
    f.drain(wild)
    assert not f.hub.caught_up()
    f.drain(some)
    assert f.hub.caught_up()
    f.hub.set_mode(wild, latest=True)
    f.publish(0, 0)
    assert not f.hub.caught_up()
    f.hub.take(wild)
    assert f.hub.caught_up()
    f.hub.detach(wild)
    f.hub.detach(some)
    assert not f.hub.caught_up() and idle.cursor == 0


def test_narrowing_from_star_while_behind_still_delivers_every_kept_update():
    # A take stops at max_take; the connection takes once more, then narrows `*` to S1.
    feed = Feed(max_take=2)
    sub = feed.attach(wildcard=True)
    feed.publish(0, 1, 0, 1, 0, 1)
    assert pairs(feed.hub.take(sub)) == [(0, 1), (1, 1)] and feed.hub.has_more(sub)
    feed.hub.set_subscription(sub, False, np.array([1], np.intp))
    assert feed.drain(sub) == [(1, 2), (1, 3)]


# --------------------------------------------------------------------------- per-connection state


def test_a_subscriber_pays_for_its_symbols_not_the_universe():
    n = 10_000
    uni = Universe.synthetic(n)
    hub = Hub(uni, Market(uni, seed=0, start_ns=0).snapshot())
    some, wild = hub.attach(lambda: None), hub.attach(lambda: None)
    hub.set_subscription(some, False, np.array([9, 3, 7000], np.intp))
    hub.set_subscription(wild, True, np.empty(0, np.intp))
    assert some.ids.tolist() == [3, 9, 7000] and some.last_seq.nbytes == 3 * 8
    assert wild.last_seq.nbytes == n * 8  # a `*` subscriber holds every symbol's seq
    hub.set_subscription(wild, False, np.array([5], np.intp))
    assert wild.last_seq.nbytes == 8 and wild.seq_of(5) == hub.lvc["seq"][5]


SUB_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.lists(st.integers(0, N - 1), min_size=1, max_size=6)),
        st.tuples(st.just("take"), st.none()),
        st.tuples(st.just("subscribe"), st.none() | st.sets(st.integers(0, N - 1))),
        st.tuples(st.just("snapshot"), st.sets(st.integers(0, N - 1))),
    ),
    max_size=50,
)


@settings(max_examples=120, deadline=None)
@given(SUB_OPS, st.sampled_from([2, 1000]))
def test_changing_subscriptions_against_a_model(ops, max_take):
    """Whatever the subscription changes (`*`, some, none), a subscriber gets only its symbols,
    each update once and in order; a symbol it adds starts from its state at that moment."""
    f = Feed(max_take=max_take)
    sub = f.attach(True)
    held: set[int] = set(range(N))
    have = [0] * N
    for op, arg in ops:
        if op == "publish":
            f.publish(*arg)
        elif op == "take":
            pending = f.hub.take(sub)
            for s, q in pairs(pending) if pending is not None else ():
                assert s in held and q == have[s] + 1  # every update: never a jump or repeat
                have[s] = q
        elif op == "subscribe":
            # The connection takes what the old subscription has pending first.
            while (pending := f.hub.take(sub)) is not None:
                for s, q in pairs(pending):
                    assert s in held and q == have[s] + 1
                    have[s] = q
            new = set(range(N)) if arg is None else arg
            for s in new - held:
                have[s] = f.seq[s]
            held = new
            f.hub.set_subscription(sub, arg is None, np.array(sorted(new), np.intp))
        else:
            ids = sorted(arg & held)
            for s, q in pairs(f.hub.snapshot(sub, np.array(ids, np.intp))):
                have[s] = q
    f.drain(sub)
    for s in held:
        assert sub.seq_of(s) == f.seq[s]
    assert sub.ticks_conflated == 0


def test_a_take_of_whole_batches_records_each_symbols_last_seq():
    """A `*` reader some batches behind takes them whole; the seqs it then holds are each
    symbol's last in them (merged from the batches' own, later batches winning)."""
    market = Market(Universe.synthetic(200), seed=4, start_ns=0)
    hub = Hub(market.universe, market.snapshot(), max_lag_s=0)
    sub = hub.attach(lambda: None)
    hub.set_subscription(sub, True, np.empty(0, np.intp))
    for k in range(1, 6):
        hub.publish(market.step(k * 10_000_000), on_grid=True)
    taken = hub.take(sub)
    assert taken is not None and hub.take(sub) is None
    assert len(hub.shared_all) == 1  # one take: the five batches whole
    assert np.array_equal(sub.last_seq, hub.lvc["seq"])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.lists(st.integers(0, 10**6), max_size=400))
def test_last_of_finds_each_symbols_last_record_as_unique_does(n: int, raw: list[int]) -> None:
    """Both ways (few records: np.unique; many: a table of the universe) give the sorted ids
    and the index of each one's last record, and leave the shared table as they found it."""
    sym = np.array([x % n for x in raw], np.intp)
    ids, at = last_of(sym, n)
    want_ids, rev = np.unique(sym[::-1], return_index=True)
    assert ids.tolist() == want_ids.tolist()
    assert at.tolist() == (len(sym) - 1 - rev).tolist()
    assert last_of(sym, n)[1].tolist() == at.tolist()  # the table was left clean
