"""The fan-out core in latest mode (conflation), without trio: waking is a callback we count.

Every-update delivery, history and resume are in test_hub_every.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed import protocol as p
from tickwire.feed.hub.history import ENTRY_BYTES
from tickwire.feed.hub.hub import Hub, Subscriber
from tickwire.feed.protocol import messages
from tickwire.simulators.ticks import TICK_DTYPE
from tickwire.simulators.universe import Universe

N = 5


def universe(ticks: tuple[float, ...] = (0.01,) * N) -> Universe:
    rows = [
        (f"S{i}", f"Name {i}", "Tech", 100.0, t, 100, 1.0, "stock") for i, t in enumerate(ticks)
    ]
    return Universe.from_rows(rows)


def records(*rows: dict[str, Any]) -> np.ndarray:
    """TICK_DTYPE records; fields not given get plausible values."""
    out = np.zeros(len(rows), TICK_DTYPE)
    for i, row in enumerate(rows):
        base = {"ts": 1_000 + i, "bid": 99.99, "ask": 100.01, "last": 100.0, "volume": 100}
        base.update({"bid_size": 300, "ask_size": 200, "last_size": 100, "flags": 0})
        base.update(row)
        for k, v in base.items():
            out[i][k] = v
    return out


def initial(n: int = N) -> np.ndarray:
    return records(*({"sym": i, "seq": 0} for i in range(n)))


class Wakes:
    """A wake callback that counts."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> None:
        self.n += 1


class Feed:
    """A hub and the per-symbol seq counters of the updates published into it."""

    def __init__(self, ring: int = 4096, ticks: tuple[float, ...] = (0.01,) * N) -> None:
        self.hub = Hub(universe(ticks), initial(len(ticks)), ring=ring)
        self.seq = [0] * len(ticks)

    def publish(self, *syms: int, **fields: Any) -> np.ndarray:
        rows = []
        for s in syms:
            self.seq[s] += 1
            rows.append({"sym": s, "seq": self.seq[s], **fields})
        batch = records(*rows)
        self.hub.publish(batch)
        return batch

    def attach(
        self, wildcard: bool = False, ids: Sequence[int] = (), latest: bool = True
    ) -> tuple[Subscriber, Wakes]:
        wake = Wakes()
        sub = self.hub.attach(wake)
        self.hub.set_mode(sub, latest)
        self.hub.set_subscription(sub, wildcard, np.array(ids, np.intp))
        return sub, wake


def latest(pending: p.Pending | None) -> dict[int, int]:
    assert pending is not None
    return dict(zip(pending.records["sym"].tolist(), pending.records["seq"].tolist(), strict=True))


# --------------------------------------------------------------------------- waking


def test_publish_wakes_wildcard_and_only_explicit_subscribers_of_changed_symbols():
    f = Feed()
    (_, w1), (_, w2) = f.attach(True), f.attach(True)
    (_, a), (_, b) = f.attach(ids=[0]), f.attach(ids=[1, 2])
    _, none = f.attach()
    f.publish(1)
    assert (w1.n, w2.n, a.n, b.n, none.n) == (1, 1, 0, 1, 0)
    f.publish(1, 2, 1, 2, 3)  # once per publish, however many of its symbols changed
    assert (w1.n, w2.n, a.n, b.n, none.n) == (2, 2, 0, 2, 0)
    f.publish(3, 4)
    assert (w1.n, w2.n, a.n, b.n, none.n) == (3, 3, 0, 2, 0)
    f.publish(0, 2)
    assert (w1.n, w2.n, a.n, b.n, none.n) == (4, 4, 1, 3, 0)
    f.hub.publish(records()[:0])  # an empty batch is no publish at all
    assert (w1.n, a.n, b.n) == (4, 1, 3)
    assert f.hub.gen == 4


def test_detach_and_resubscribe_change_who_is_woken():
    f = Feed()
    w, ww = f.attach(True)
    e, ew = f.attach(ids=[0, 1])
    f.hub.detach(w)
    f.hub.set_subscription(e, False, np.array([2], np.intp))
    f.publish(0, 1)
    assert (ww.n, ew.n) == (0, 0)
    f.publish(2)
    assert (ww.n, ew.n) == (0, 1)
    f.hub.set_subscription(e, True, np.empty(0, np.intp))
    f.publish(4)
    assert ew.n == 2
    # The last named subscriber gone (its wake-ups skip the per-symbol lookup), a new one
    # is woken again, and one that narrows from `*` too.
    n, nw = f.attach(ids=[4])
    f.publish(4)
    assert (ew.n, nw.n) == (3, 1)
    f.hub.detach(n)
    f.hub.set_subscription(e, False, np.array([3], np.intp))
    f.publish(4)
    f.publish(3)
    assert (ew.n, nw.n) == (4, 1)


# --------------------------------------------------------------------------- take


def test_take_returns_the_latest_record_per_symbol_once():
    f = Feed()
    sub, _ = f.attach(True)
    assert f.hub.take(sub) is None  # nothing published yet
    f.publish(0, 0, 1, 0)
    pending = f.hub.take(sub)
    assert latest(pending) == {0: 3, 1: 1}
    assert pending.conflated == 2  # seq 1 and 2 of symbol 0 were skipped
    assert pending.records.dtype == TICK_DTYPE
    assert f.hub.take(sub) is None
    f.publish(1)
    assert latest(f.hub.take(sub)) == {1: 2}
    assert f.hub.take(sub) is None


def test_explicit_subscriber_takes_only_its_symbols():
    f = Feed()
    sub, _ = f.attach(ids=[1, 3])
    f.publish(0, 1, 2)
    assert latest(f.hub.take(sub)) == {1: 1}
    f.publish(0, 2, 4)
    assert f.hub.take(sub) is None  # woken for nothing: nothing to take either
    f.publish(3, 3, 1)
    assert latest(f.hub.take(sub)) == {3: 2, 1: 2}


def test_a_new_symbol_starts_from_its_current_state_without_backlog():
    f = Feed()
    sub, _ = f.attach(ids=[0])
    f.publish(1, 1, 1)
    f.hub.take(sub)
    f.hub.set_subscription(sub, False, np.array([0, 1], np.intp))
    assert f.hub.take(sub) is None
    f.publish(1)
    pending = f.hub.take(sub)
    assert latest(pending) == {1: 4} and pending.conflated == 0


@pytest.mark.parametrize("ring", [4096, 16, 4])
@pytest.mark.parametrize("publishes", [1, 2, 3, 7, 50])
def test_a_slow_subscriber_holds_one_record_per_symbol_and_counts_what_it_skipped(ring, publishes):
    f = Feed(ring=ring)
    wild, _ = f.attach(True)
    some, _ = f.attach(ids=[0, 3])
    rng = np.random.default_rng(publishes)
    for _ in range(publishes):
        f.publish(*rng.integers(0, N, rng.integers(1, 6)).tolist())
    for sub, held in ((wild, range(N)), (some, [0, 3])):
        pending = f.hub.take(sub)
        expected = {s: f.seq[s] for s in held if f.seq[s]}
        assert latest(pending) == expected
        assert len(pending.records) <= len(held)
        assert pending.conflated == sum(seq - 1 for seq in expected.values())
        assert sub.ticks_conflated == pending.conflated
        assert f.hub.take(sub) is None


def test_snapshot_then_take_never_repeats_a_seq():
    f = Feed()
    sub, _ = f.attach(True)
    f.publish(0, 1, 1)
    snap = f.hub.snapshot(sub, np.array([1, 2], np.intp))
    assert latest(snap) == {1: 2, 2: 0}
    assert snap.conflated == 0
    assert latest(f.hub.take(sub)) == {0: 1}  # symbol 1 already went out in the snapshot
    f.publish(1, 2)
    assert latest(f.hub.take(sub)) == {1: 3, 2: 1}
    f.hub.snapshot(sub, np.arange(N))
    f.publish(2)
    f.hub.snapshot(sub, np.array([2], np.intp))
    assert f.hub.take(sub) is None


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.lists(st.integers(0, N - 1), min_size=1, max_size=8)),
        st.tuples(st.just("take"), st.integers(0, 2)),
        st.tuples(st.just("snapshot"), st.integers(0, 2), st.sets(st.integers(0, N - 1))),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(OPS, st.sampled_from([4, 8, 4096]))
def test_takes_and_snapshots_against_a_model(ops, ring):
    """Every update reaches each subscriber once or is counted as conflated: never twice."""
    f = Feed(ring=ring)
    held = [set(range(N)), set(range(N)), {0, 2}]
    subs = [f.attach(True), f.attach(True), f.attach(ids=[0, 2])]
    delivered = [[0] * N for _ in subs]  # the seq each subscriber last got, per symbol
    conflated = [0] * len(subs)
    wakes = [0] * len(subs)
    for op in ops:
        if op[0] == "publish":
            f.publish(*op[1])
            for k in range(len(subs)):
                wakes[k] += bool(held[k] & set(op[1]))
        elif op[0] == "take":
            k = op[1]
            sub, _ = subs[k]
            pending = f.hub.take(sub)
            want = {s: f.seq[s] for s in held[k] if f.seq[s] > delivered[k][s]}
            if not want:
                assert pending is None
                continue
            got = latest(pending)
            assert got == want and len(got) == len(pending.records)
            skipped = sum(want[s] - delivered[k][s] - 1 for s in want)
            assert pending.conflated == skipped
            conflated[k] += skipped
            for s, seq in want.items():
                delivered[k][s] = seq
            assert pending.json_body() == p.ticks_body(pending.records, f.hub.names)
        else:
            k, ids = op[1], sorted(op[2])
            pending = f.hub.snapshot(subs[k][0], np.array(ids, np.intp))
            assert latest(pending) == {s: f.seq[s] for s in ids}
            for s in ids:
                delivered[k][s] = f.seq[s]
    for k, (sub, wake) in enumerate(subs):
        assert sub.ticks_conflated == conflated[k]
        assert wake.n == wakes[k]


# --------------------------------------------------------------------------- JSON encoding


def test_json_body_equals_encoding_the_records_afresh():
    f = Feed()
    wild, _ = f.attach(True)
    some, _ = f.attach(ids=[4, 1])
    f.publish(4, 1, 0, 4, bid=123.45, ask=123.47, flags=3)
    for sub in (wild, some):
        pending = f.hub.take(sub)
        body = pending.json_body()
        assert body == p.ticks_body(pending.records, f.hub.names)
        assert orjson.loads(body) == p.tick_dicts(pending.records, f.hub.names)
        assert p.records_from_json(orjson.loads(body), {"S0": 0, "S1": 1, "S4": 4}).tobytes() == (
            pending.records.tobytes()
        )
    snap = f.hub.snapshot(some, np.array([0, 1, 2], np.intp))
    assert snap.json_body() == p.ticks_body(snap.records, f.hub.names)


def test_wildcard_subscribers_at_the_same_generation_share_one_body(monkeypatch):
    encoded: list[int] = []
    real = p.tick_objects_at

    def counting(recs, names):
        encoded.extend(recs["sym"].tolist())
        return real(recs, names)

    monkeypatch.setattr(p, "tick_objects_at", counting)  # what the hub calls...
    monkeypatch.setattr(messages, "tick_objects_at", counting)  # ...and the others inside
    f = Feed()
    wild = [f.attach(True)[0] for _ in range(3)]
    some = [f.attach(ids=[0, 1])[0], f.attach(ids=[1])[0]]
    for step in range(5):
        encoded.clear()
        f.publish(0, 1, 2, step % N)
        taken = [f.hub.take(sub) for sub in wild]
        bodies = [t.json_body() for t in taken]
        assert bodies[1] is bodies[0] and bodies[2] is bodies[0]
        for sub in some:
            f.hub.take(sub).json_body()
        assert sorted(encoded) == sorted({0, 1, 2, step % N})  # each update encoded once


def test_prices_are_normalised_to_the_tick_grid():
    f = Feed(ticks=(0.01, 0.01, 0.001, 1.0, 0.1))
    sub, _ = f.attach(True)
    f.publish(0, 1, 2, 3, 4, bid=189.2149999, ask=189.2250001, last=0.1 + 0.2)
    recs = f.hub.take(sub).records
    assert recs["bid"].tolist() == [189.21, 189.21, 189.215, 189.0, 189.2]
    assert recs["ask"].tolist() == [189.23, 189.23, 189.225, 189.0, 189.2]
    assert recs["last"].tolist() == [0.3, 0.3, 0.3, 0.0, 0.3]
    body = f.hub.snapshot(sub, np.arange(N)).json_body()
    assert b'"bid":189.21,' in body and b'"last":0.3,' in body  # the shortest decimal form


@settings(deadline=None)
@given(st.lists(st.floats(0.005, 1e7), min_size=3, max_size=3))
def test_json_and_binary_carry_the_same_rounded_prices(prices):
    f = Feed()
    sub, _ = f.attach(ids=[0])
    bid, ask, last = prices
    f.publish(0, bid=bid, ask=ask, last=last)
    pending = f.hub.take(sub)
    (rec,) = pending.records
    (tick,) = orjson.loads(pending.json_body())
    binary = p.decode_binary(p.encode_binary(p.BinaryType.TICKS, 1, pending.records)).records
    for name, price in zip(("bid", "ask", "last"), prices, strict=True):
        assert float(rec[name]) == round(price * 100) / 100
        assert tick[name] == float(binary[0][name]) == float(rec[name])


def test_the_initial_snapshot_is_normalised_too():
    init = initial()
    init["bid"] = 10.004999
    hub = Hub(universe(), init)
    sub = hub.attach(Wakes())
    assert hub.snapshot(sub, np.arange(N)).records["bid"].tolist() == [10.0] * N
    with pytest.raises(ValueError):
        Hub(universe(), initial(N - 1))


def test_statistics():
    f = Feed()
    f.attach(True)
    f.publish(0, 1)
    f.publish(2)
    assert f.hub.statistics() == {
        "symbols": N,
        "generation": 2,
        "ticks_published": 3,
        "wildcard_subscribers": 1,
        "epoch": f.hub.epoch,
        "history_records": 3,
        "history_bytes": 3 * 64 + 2 * ENTRY_BYTES,  # two batches
        "history_s": 0.0,
        "offset": 3,
        "oldest_offset": 0,
    }
    assert len(f.hub.epoch) == 16 and int(f.hub.epoch, 16) >= 0
    assert Hub(universe(), initial()).epoch != f.hub.epoch


def test_a_pending_body_still_matches_its_records_after_the_next_publish():
    f = Feed()
    sub, _ = f.attach(True)
    f.publish(0)
    pending = f.hub.take(sub)
    f.publish(0)
    assert pending.json_body() == p.ticks_body(pending.records, f.hub.names)


def test_only_the_subscriber_writes_its_cursor_and_seqs():
    """A subscriber's state is written by its own methods alone (`hub/subscriber.py`): no module
    assigns to `sub.<field>` (or into `sub.last_seq[...]`)."""
    import ast
    import dataclasses
    from pathlib import Path

    import tickwire.feed

    fields = {f.name for f in dataclasses.fields(Subscriber)}
    root = Path(tickwire.feed.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "subscriber.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for t in targets:
                for el in t.elts if isinstance(t, ast.Tuple) else [t]:
                    while isinstance(el, ast.Subscript):
                        el = el.value
                    if not (isinstance(el, ast.Attribute) and el.attr in fields):
                        continue
                    base = el.value
                    if (isinstance(base, ast.Name) and base.id == "sub") or (
                        isinstance(base, ast.Attribute) and base.attr == "sub"
                    ):
                        found.append(f"{path.relative_to(root)}:{el.lineno} .{el.attr}")
    assert not found, found
