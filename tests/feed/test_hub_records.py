"""The hub copies records through an opaque-bytes view (`history.pick`): the same records, field
for field, as numpy's structured indexing gives, from whole batches, slices and the hub's
latest-value cache alike."""

from __future__ import annotations

import numpy as np

from tickwire.feed.hub.history import pick
from tickwire.feed.hub.hub import Hub
from tickwire.simulators import Market, Universe

START_NS = 1_700_000_000_000_000_000


def test_pick_gives_the_records_structured_indexing_gives() -> None:
    market = Market(Universe.synthetic(200), seed=5, start_ns=START_NS)
    batch = market.step(START_NS + 500_000_000)
    rng = np.random.default_rng(1)
    for source in (batch, batch[3:-3], batch[::2]):
        for idx in (rng.integers(0, len(source), 40), np.arange(len(source))[::-3], np.arange(0)):
            got = pick(source, idx.astype(np.intp))
            assert got.dtype == batch.dtype and got.tobytes() == source[idx].tobytes()
            got["seq"] = 0  # a copy: the source is untouched
            assert source[idx]["seq"].all() or not len(idx)


def test_the_latest_value_cache_holds_each_symbols_last_record() -> None:
    market = Market(Universe.synthetic(300), seed=6, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot())
    expect = hub.lvc.copy()
    for k in range(1, 30):
        batch = market.step(START_NS + k * 7_000_000)
        hub.publish(batch, on_grid=True)
        for rec in batch:  # in event order: the last record of each symbol wins
            expect[int(rec["sym"])] = rec
        assert hub.lvc.tobytes() == expect.tobytes()
