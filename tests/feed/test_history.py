"""The history ring: offsets, eviction by event time and by memory, lookups (hypothesis)."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed.hub.history import ENTRY_BYTES, Derived, History
from tickwire.simulators.ticks import TICK_DTYPE


def batch(n: int, ts: int) -> np.ndarray:
    out = np.zeros(n, TICK_DTYPE)
    out["ts"] = ts
    out["sym"] = np.arange(n) % 7
    return out


BATCHES = st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3_000_000_000)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(
    BATCHES,
    st.sampled_from([0.0, 0.5, 2.0, 60.0]),
    st.sampled_from([0, 64 * 50, 64 * 200, 1 << 30]),
)
def test_the_ring_keeps_the_newest_window_and_finds_every_offset(steps, window_s, max_bytes):
    hist = History(window_s, max_bytes)
    ts, kept = 0, []
    for gen, (n, dt) in enumerate(steps, start=1):
        ts += dt
        b = batch(n, ts)
        start = hist.head
        hist.append(b, gen, np.arange(min(n, 7)), np.zeros(min(n, 7), np.uint64))
        kept.append((start, gen, ts, b))
        assert hist.head == start + n
    if not steps:
        assert hist.oldest == hist.head == 0 and len(hist) == 0
        return
    live = [k for k in kept if k[0] >= hist.oldest]
    # what is kept is a suffix of what was published, always including the newest batch
    assert live and live[-1] is kept[-1] and live[0][0] == hist.oldest and len(live) == len(hist)
    assert hist.nbytes == sum(k[3].nbytes + ENTRY_BYTES for k in live)
    # ...within both bounds, unless only the newest is left
    if len(live) > 1:
        assert hist.nbytes <= max_bytes and live[0][2] >= ts - int(window_s * 1e9)
    # ...and nothing was evicted that both bounds would have kept
    evicted = [k for k in kept if k[0] < hist.oldest]
    if evicted:
        last_out = evicted[-1]
        fits = hist.nbytes + last_out[3].nbytes + ENTRY_BYTES <= max_bytes
        assert not fits or last_out[2] < ts - int(window_s * 1e9)
    for start, gen, _, b in live:
        for off in {start, start + len(b) - 1}:
            entry = hist.entry(hist.index(off))
            assert entry.start == start and entry.gen == gen and entry.records is b
            for hint in (gen, gen - 1, gen + 1, 0, 1 << 40):  # a hint never changes the answer
                assert hist.index(off, hint) == hist.index(off)
            assert hist.covers(off)
            assert hist.gen_at(off) == gen - 1
        assert hist.entry(hist.index_of_gen(gen)).start == start
    assert hist.covers(hist.head) and hist.gen_at(hist.head) == len(steps)
    assert not hist.covers(hist.oldest - 1) and not hist.covers(hist.head + 1)
    assert hist.statistics()["history_records"] == hist.head - hist.oldest


def test_a_reader_behind_finds_its_batch_by_its_generation_without_a_search(monkeypatch):
    """A reader behind knows the generation of the batch its cursor is in: checked, that
    costs no search of the whole window (one per take and reader, 100 readers behind)."""
    import tickwire.feed.hub.history as history

    hist = History()
    for gen in range(1, 200):
        hist.append(batch(5, gen), gen, np.arange(5), np.zeros(5, np.uint64))
    searches = []
    real = history.bisect.bisect_right
    monkeypatch.setattr(
        history.bisect, "bisect_right", lambda *a, **k: searches.append(1) or real(*a, **k)
    )
    assert hist.index(5 * 100 + 2, 101) == hist.index_of_gen(101) and not searches
    assert hist.lag_ns(5 * 100 + 2, 101) == 199 - 101 and not searches
    assert hist.index(5 * 100 + 2, 7) == hist.index_of_gen(101) and searches  # a wrong hint


def test_a_long_run_compacts_its_list_and_stays_consistent():
    hist = History(window_s=0.0)  # keep only the newest batch
    for gen in range(1, 5000):
        hist.append(batch(3, gen), gen, np.arange(3), np.zeros(3, np.uint64))
    assert len(hist) == 1 and hist.oldest == hist.head - 3
    assert hist.stop() < 2100  # the list is compacted, not grown forever
    assert hist.entry(hist.index_of_gen(4999)).start == hist.oldest


def test_generations_must_follow_each_other_and_bounds_be_sane():
    hist = History()
    hist.append(batch(1, 0), 1, np.arange(1), np.zeros(1, np.uint64))
    with pytest.raises(ValueError):
        hist.append(batch(1, 0), 3, np.arange(1), np.zeros(1, np.uint64))
    with pytest.raises(ValueError):
        History(window_s=-1)


def _fill(hist: History, batches: int, size: int) -> tuple[int, int]:
    """Append `batches` new batches of `size` records (made here, held only by the history);
    the memory traced after, and the most traced at any point, both from before the first."""
    ids, seqs = np.arange(1), np.zeros(1, np.uint64)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(batches):  # an empty history takes any first generation
            hist.append(batch(size, 1_767_000_000_000_000_000 + k * 1_000_000), k + 1, ids, seqs)
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return now - before, peak - before


@pytest.mark.parametrize("size", [1, 20])
def test_entry_bytes_is_what_a_batch_costs_besides_its_records(size: int) -> None:
    hist = History(3600, 1 << 40)
    hist.derived = Derived(keep=0)  # derived data is bounded apart: leave it out
    hist.restart(10**12)  # offsets as large as a long-running server's
    n = 20_000
    held, _ = _fill(hist, n, size)
    per_batch = held / n - size * TICK_DTYPE.itemsize
    assert per_batch <= ENTRY_BYTES <= per_batch * 1.1, f"measured {per_batch:.0f} B a batch"


def test_the_byte_cap_bounds_the_memory_of_many_small_batches() -> None:
    # 1 ms steps of one tick each: counted as records alone (64 B), a 1 MiB cap kept 16k
    # batches, about 7 MiB. Counted as they cost, the cap holds with room to spare.
    cap = 1 << 20
    hist = History(3600, cap)
    hist.derived = Derived(keep=0)
    held, peak = _fill(hist, 40_000, 1)
    assert hist.nbytes <= cap
    assert held <= cap * 1.1 and peak <= cap * 1.2, f"held {held}, peak {peak} B"
