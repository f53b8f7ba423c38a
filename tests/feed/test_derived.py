"""What the hub keeps besides the records is bounded in bytes: the JSON of recent batches (one
right-sized bytes object per batch) and their last seqs, the oldest dropped first, re-encoded
the same for a reader that needs them again."""

from __future__ import annotations

import tracemalloc
from itertools import pairwise

import numpy as np
import orjson

from tickwire.feed import protocol as p
from tickwire.feed.hub.hub import Hub
from tickwire.feed.hub.latest import Changes
from tickwire.simulators import Market, Universe

START_NS = 1_700_000_000_000_000_000


def _recs(n_symbols: int, seconds: float) -> tuple[Market, np.ndarray]:
    market = Market(Universe.synthetic(n_symbols), seed=3, start_ns=START_NS)
    return market, market.step(START_NS + int(seconds * 1e9))


def test_tick_objects_are_the_tick_dicts_encoded_and_cut_where_each_starts() -> None:
    market, recs = _recs(50, 2.0)
    names = np.array(market.universe.symbols, dtype=object)
    text = p.tick_objects(recs, names)
    at = p.object_starts(text, recs, names)
    assert len(at) == len(recs) + 1 and at[0] == 0 and at[-1] == len(text) + 1
    dicts = p.tick_dicts(recs, names)
    assert [orjson.loads(text[a : b - 1]) for a, b in pairwise(at.tolist())] == dicts
    assert b"[" + text + b"]" == p.ticks_body(recs, names)
    assert p.tick_objects(recs[:0], names) == b""
    assert p.object_starts(b"", recs[:0], names).tolist() == [1]


def test_a_symbol_name_with_a_brace_is_cut_right() -> None:
    _, recs = _recs(3, 5.0)
    names = np.array(["A{", "{B}", "},{"], dtype=object)
    text = p.tick_objects(recs, names)
    at = p.object_starts(text, recs, names)
    assert len(text.split(b"{")) > len(recs) + 1  # the names' braces are in there
    assert [orjson.loads(text[a : b - 1]) for a, b in pairwise(at.tolist())] == p.tick_dicts(
        recs, names
    )


def test_fragments_cost_their_size_not_an_encoder_buffer() -> None:
    """orjson gives every result a 4 KiB buffer: a fragment per tick cost 24x its JSON."""
    market, recs = _recs(200, 1.0)
    recs = recs[:2000]
    names = np.array(market.universe.symbols, dtype=object)
    tracemalloc.start()
    try:
        frags = p.tick_fragments(recs, names)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = sum(len(f) for f in frags)
    assert held < 1.6 * size + 64 * len(frags), (held, size)


def test_derived_data_stays_under_its_byte_cap_and_bodies_stay_right() -> None:
    market = Market(Universe.synthetic(300), seed=5, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot(), max_lag_s=0)  # every update, however old
    cap = 256 * 1024
    derived = hub.history.derived
    derived.max_bytes = cap
    fast = hub.attach(lambda: None)
    slow = hub.attach(lambda: None)
    for sub in (fast, slow):
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    bodies = 0
    for k in range(1, 80):
        hub.publish(market.step(START_NS + k * 50_000_000), on_grid=True)
        while (taken := hub.take(fast)) is not None:
            assert taken.json_body() == p.ticks_body(taken.records, hub.names)
            bodies += 1
        entries = hub.history.entries_from(hub.history.oldest)
        kept = sum(len(e.json) for e in entries if e.json is not None)
        kept += sum(e.json_at.nbytes for e in entries if e.json_at is not None)
        ids = sum(
            e.last_ids.nbytes + e.last_seqs.nbytes
            for e in entries
            if e.last_ids is not None and e.last_seqs is not None
        )
        assert kept + ids == derived.nbytes <= cap
    assert bodies >= 79
    # The slow reader's batches lost their JSON long ago: encoded again, the same bytes.
    assert sum(e.json is None for e in hub.history.entries_from(hub.history.oldest)) > 10
    while (taken := hub.take(slow)) is not None:
        assert taken.json_body() == p.ticks_body(taken.records, hub.names)
    assert derived.nbytes <= cap


def test_derived_data_goes_with_the_history() -> None:
    market = Market(Universe.synthetic(100), seed=1, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot(), history_bytes=64 * 1024)
    sub = hub.attach(lambda: None)
    hub.set_subscription(sub, True, np.empty(0, np.intp))
    for k in range(1, 60):
        hub.publish(market.step(START_NS + k * 20_000_000), on_grid=True)
        while (taken := hub.take(sub)) is not None:
            taken.json_body()
    oldest = hub.history.entry(hub.history.index(hub.history.oldest)).gen
    assert hub.history.derived.nbytes > 0
    assert all(entry.gen >= oldest for entry in hub.history.derived.batches())
    hub.history.restart(hub.history.head)
    assert hub.history.derived.nbytes == 0


def test_derived_data_goes_when_the_last_subscriber_leaves() -> None:
    market = Market(Universe.synthetic(100), seed=1, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot())
    subs = [hub.attach(lambda: None) for _ in range(2)]
    for sub in subs:
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    for k in range(1, 20):
        hub.publish(market.step(START_NS + k * 20_000_000), on_grid=True)
        for sub in subs:
            while (taken := hub.take(sub)) is not None:
                taken.json_body()
    held = hub.history.derived.nbytes
    hub.detach(subs[0])
    assert hub.history.derived.nbytes == held > 0
    hub.detach(subs[1])
    assert hub.history.derived.nbytes == 0
    entries = hub.history.entries_from(hub.history.oldest)
    assert all(e.json is None and e.json_at is None and e.last_ids is None for e in entries)


def test_the_changes_ring_is_bounded_in_bytes_and_still_answers_right() -> None:
    rng = np.random.default_rng(7)
    n = 500
    changes = Changes(n, ring=64, max_bytes=20 * 1024)
    history: list[np.ndarray] = []
    for gen in range(1, 200):
        size = int(rng.integers(1, n)) if gen % 3 else n  # some generations change everything
        ids = np.unique(rng.choice(n, size))
        changes.record(gen, ids)
        history.append(ids)
        assert changes.nbytes <= max(changes.max_bytes, ids.nbytes)
        for since in (gen - 1, gen - 2, gen - 5, gen - 15, 0):
            if since < 0:
                continue
            want = np.unique(np.concatenate(history[since:])) if since < gen else []
            assert changes.since(since).tolist() == list(want)


def test_changes_over_many_generations_cost_one_scan_not_a_sort(monkeypatch) -> None:
    """A reader past the lag bound takes the symbols changed over hundreds of generations: one
    scan of every symbol's last change (a few us), not a sort of every generation's ids
    (100x that); the ids of a few generations, few next to the universe, are still sorted."""
    n = 1500
    changes = Changes(n, ring=4096)
    rng = np.random.default_rng(3)
    history = [np.unique(rng.choice(n, 75 if k < 597 else 5)) for k in range(600)]
    for gen, ids in enumerate(history, start=1):
        changes.record(gen, ids)
    sorted_sizes: list[int] = []
    real = np.unique
    monkeypatch.setattr(np, "unique", lambda a, **kw: sorted_sizes.append(len(a)) or real(a, **kw))
    for since in (600 - 500, 600 - 40, 600 - 3, 0):
        want = real(np.concatenate(history[since:]))
        assert changes.since(since).tolist() == want.tolist()
    assert sorted_sizes and max(sorted_sizes) <= 15  # the last three generations' ids only


def test_a_reader_behind_within_the_lag_bound_reads_the_shared_json(monkeypatch) -> None:
    """At the default 1 ms cadence a reader up to the lag bound (1 s: ~1000 batches) behind
    reads every update: the JSON its batches got for the readers ahead is still there, so
    100 readers behind do not encode them again each."""
    market = Market(Universe.synthetic(200), seed=2, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot())  # the default lag bound
    ahead, behind = hub.attach(lambda: None), hub.attach(lambda: None)
    for sub in (ahead, behind):
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    for k in range(1, 900):  # 0.9 s of 1 ms batches
        hub.publish(market.step(START_NS + k * 1_000_000), on_grid=True)
        while (taken := hub.take(ahead)) is not None:
            taken.json_body()
    encoded: list[int] = []
    real = p.tick_objects_at
    monkeypatch.setattr(
        p, "tick_objects_at", lambda recs, names: encoded.append(1) or real(recs, names)
    )
    bodies = 0
    while (taken := hub.take(behind)) is not None:
        assert not taken.gap and taken.json_body() == p.ticks_body(taken.records, hub.names)
        bodies += 1
    assert bodies > 1 and behind.cursor == hub.history.head
    assert encoded == []
