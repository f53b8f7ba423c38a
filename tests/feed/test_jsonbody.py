"""A reader of a few symbols gets its records encoded on their own, byte for byte as the shared
encoding of the whole batch would give them."""

from __future__ import annotations

import numpy as np

from tickwire.feed.hub.hub import Hub, Pending, Subscriber
from tickwire.simulators import Market, Universe

START_NS = 1_700_000_000_000_000_000


def test_a_sparse_take_encodes_the_same_json_as_the_shared_batch() -> None:
    market = Market(Universe.synthetic(400), seed=2, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot(), max_lag_s=0)  # every update, however old
    few = hub.attach(lambda: None)
    hub.set_subscription(few, False, np.array([3, 250], np.intp))
    wild = hub.attach(lambda: None)
    hub.set_subscription(wild, True, np.empty(0, np.intp))
    for k in range(1, 40):
        hub.publish(market.step(START_NS + k * 50_000_000), on_grid=True)
    firsts = _all(hub, few)  # taken first: nobody has encoded these batches yet
    sparse = [t.json_body() for t in firsts]
    assert sum(len(t.records) for t in firsts) > 0
    while hub.take(wild) is not None:
        pass
    for entry in hub.history.entries_from(hub.history.oldest):
        hub.json.entry_json(entry)  # now the whole batches are encoded and cached
    again = hub.attach(lambda: None)
    hub.set_subscription(again, False, np.array([3, 250], np.intp))
    assert hub.resume(again, hub.epoch, hub.history.oldest) == sum(len(t.records) for t in firsts)
    seconds = _all(hub, again)
    assert [t.records.tobytes() for t in seconds] == [t.records.tobytes() for t in firsts]
    assert [t.json_body() for t in seconds] == sparse


def _all(hub: Hub, sub: Subscriber) -> list[Pending]:
    out = []
    while (taken := hub.take(sub)) is not None:
        out.append(taken)
    return out
