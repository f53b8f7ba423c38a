"""Subscribers of everything at the same generation share one take: computed and encoded once."""

from __future__ import annotations

import numpy as np

from tickwire.feed.hub.hub import Hub
from tickwire.simulators import Market, Universe


def _hub_and_market():
    universe = Universe.default()
    market = Market(universe, seed=3, start_ns=0)
    return Hub(universe, market.snapshot()), market


def test_wildcard_subscribers_share_one_take_and_one_body():
    hub, market = _hub_and_market()
    subs = [hub.attach(lambda: None) for _ in range(3)]
    for sub in subs:
        hub.set_mode(sub, latest=True)
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    for step in range(1, 30):
        hub.publish(market.step(step * 20_000_000))
        taken = [hub.take(sub) for sub in subs]
        if taken[0] is None:
            continue
        assert taken[1] is taken[0] and taken[2] is taken[0]  # one computation for all
        assert taken[0].json_body() is taken[1].json_body()  # and one encoding
    # each kept its own exact accounting all the same
    assert len({int(s.ticks_conflated) for s in subs}) == 1
    assert all(np.array_equal(s.last_seq, hub.lvc["seq"]) for s in subs)


def test_a_snapshot_takes_a_subscriber_off_the_shared_path_until_its_next_take():
    hub, market = _hub_and_market()
    a, b = hub.attach(lambda: None), hub.attach(lambda: None)
    for sub in (a, b):
        hub.set_mode(sub, latest=True)
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    hub.publish(market.step(50_000_000))
    hub.snapshot(b, np.arange(len(hub)))  # b now holds newer states than its generation
    assert not b.synced
    ta, tb = hub.take(a), hub.take(b)
    assert ta is not None and tb is None  # b already has everything: nothing repeats
    hub.publish(market.step(100_000_000))
    assert b.synced and hub.take(a) is hub.take(b)


def test_every_update_readers_in_step_share_one_array_of_seqs_copied_on_write():
    """`*` readers in step end each take holding every symbol's seq as of its end: one array
    made per take, shared (not a write into each reader's own). A write for one of them
    (a snapshot, a latest-state take) copies it first: the others keep theirs."""
    hub, market = _hub_and_market()
    subs = [hub.attach(lambda: None) for _ in range(3)]
    for sub in subs:
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    for step in range(1, 20):
        hub.publish(market.step(step * 20_000_000))
        for sub in subs:
            while hub.take(sub) is not None:
                pass
        assert subs[0].last_seq is subs[1].last_seq is subs[2].last_seq
        assert subs[0].last_seq.tolist() == hub.lvc["seq"].tolist()
    a, b, c = subs
    before = b.last_seq.copy()
    hub.publish(market.step(400_000_000))
    hub.snapshot(a, np.arange(len(hub)))  # a now holds newer states: its own array
    assert a.last_seq is not b.last_seq and b.last_seq.tolist() == before.tolist()
    hub.set_mode(c, latest=True)
    assert hub.take(c) is not None  # conflated into its own array
    assert c.last_seq is not b.last_seq and b.last_seq.tolist() == before.tolist()
    for sub in (a, b):
        while hub.take(sub) is not None:
            pass
    assert a.last_seq.tolist() == b.last_seq.tolist() == c.last_seq.tolist()
    assert b.last_seq.tolist() == hub.lvc["seq"].tolist()


def test_prices_go_out_on_the_tick_grid_in_their_shortest_form():
    from tickwire.simulators.ticks import TICK_DTYPE

    universe = Universe.from_rows(
        [
            ("A", "A", "X", 10.0, 0.05, 100, 1.0, "stock"),
            ("B", "B", "X", 10.0, 0.01, 100, 1.0, "stock"),
        ]
    )
    initial = np.zeros(2, TICK_DTYPE)
    initial["sym"] = [0, 1]
    initial["bid"], initial["ask"] = [189.2149, 0.1 + 0.2], [189.27, 0.31]
    hub = Hub(universe, initial)
    assert hub.lvc["bid"].tolist() == [189.2, 0.3]  # 0.05 grid; no 0.30000000000000004
    assert hub.lvc["ask"].tolist() == [189.25, 0.31]
