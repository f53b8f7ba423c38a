"""Rows of every-update delivery, history and replay, measured in the hub (in-process, no sockets).

- CPU per delivered tick for 100 `*` subscribers: every update vs the latest state per flush,
  both building each connection's frame (JSON and binary), in the same run: the price of losing
  nothing (the issue's goal: within 1.3x).
- History memory per minute of market (tracemalloc) at the default universe and 5000 symbols,
  beside the records' own size.
- Resume of 10 s missed on `*` (rewind, every take, JSON), beside the snapshot a client gets
  without resume.
- Replay at speed 0 from Parquet through the hub, beside the live generator through the hub.
- A Tardis book CSV replayed, per row: to its first batch beside a quotes CSV, and whole,
  streamed beside loaded whole (`replayload`).
Imports no trio.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from tickwire.feed import protocol as p
from tickwire.feed.hub.hub import Hub, Pending
from tickwire.simulators import Market, Universe
from tickwire.simulators.ticks import TickBatch

from ._table import Row, row
from .replayload import replay_load_rows

_MS = 1_000_000


def history_rows(quick: bool) -> list[Row]:
    rows = _delivery_rows(quick)
    rows += [_memory_row(Universe.default(), "default", quick)]
    rows += [_memory_row(Universe.synthetic(5000, 0), "5000 symbols", quick)]
    rows += [_resume_row(quick), _replay_row(quick), *replay_load_rows(quick)]
    return rows


def _frame(pending: Pending, binary: bool) -> bytes:
    """What a connection makes of a take (the server's own calls)."""
    if binary:
        frame: bytes = p.encode_binary(p.BinaryType.TICKS, 1, pending.records, pending.offset)
    else:
        frame = p.ticks_text("ticks", 1, pending.json_body(), pending.offset)
    return frame


def _deliver(latest: bool, binary: bool, n_subs: int, seconds: float) -> tuple[float, int]:
    """CPU seconds and ticks delivered: publish 1 ms steps, every subscriber takes each time."""
    uni = Universe.default()
    market = Market(uni, seed=1, start_ns=0)
    market.step(60_000 * _MS)  # past the open's burst: a midday-like rate, as served
    hub = Hub(uni, market.snapshot())
    subs = [hub.attach(lambda: None) for _ in range(n_subs)]
    for sub in subs:
        hub.set_mode(sub, latest)
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    delivered = 0
    t0 = market.now_ns
    cpu0 = time.process_time()
    for k in range(1, int(seconds * 1000) + 1):
        hub.publish(market.step(t0 + k * _MS), on_grid=True)
        for sub in subs:
            pending = hub.take(sub)
            if pending is not None:
                _frame(pending, binary)
                delivered += len(pending.records)
    return time.process_time() - cpu0, delivered


def _delivery_rows(quick: bool) -> list[Row]:
    n, seconds = (20, 0.5) if quick else (100, 3.0)
    rows = []
    for binary in (False, True):
        enc = "binary" if binary else "JSON"
        cpu_all, got_all = _deliver(False, binary, n, seconds)
        cpu_last, got_last = _deliver(True, binary, n, seconds)
        rows.append(
            row(
                f"every update, N={n} '*' in the hub, {enc}: CPU per delivered tick",
                cpu_all / max(1, got_all) * 1e9,
                "ns",
                "latest per flush",
                cpu_last / max(1, got_last) * 1e9,
                higher=False,
                target="<= 1.3x",
                note=f"{got_all} vs {got_last} ticks delivered",
            )
        )
    return rows


def _memory_row(uni: Universe, label: str, quick: bool) -> Row:
    seconds = (0.5 if len(uni) > 1000 else 2.0) if quick else 10.0
    market = Market(uni, seed=1, start_ns=0)
    market.step(60_000 * _MS)
    t0 = market.now_ns
    # 1 ms steps, as the server publishes: the per-batch overhead counts too
    batches = [market.step(t0 + k * _MS).copy() for k in range(1, int(seconds * 1000) + 1)]
    hub = Hub(uni, market.snapshot(), history_s=3600, history_bytes=1 << 40)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for b in batches:  # a copy, as a live market's batch keeps its chunk alive
        hub.publish(b.copy(), on_grid=True)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    ticks = sum(len(b) for b in batches)
    batches.clear()
    per_min = 60.0 / seconds
    return row(
        f"history memory per minute, {label}",
        held * per_min / 2**20,
        "MiB",
        "the records alone (64 B each)",
        ticks * 64 * per_min / 2**20,
        higher=False,
        note=f"{ticks / seconds:,.0f} ticks/s; the 60 s default window holds one minute",
    )


def _resume_row(quick: bool) -> Row:
    missed_s = 2.0 if quick else 10.0
    uni = Universe.default()
    market = Market(uni, seed=1, start_ns=0)
    market.step(60_000 * _MS)
    hub = Hub(uni, market.snapshot())
    t0 = market.now_ns
    offset = 0
    steps = int(missed_s * 1000) + 1000
    for k in range(1, steps + 1):
        if k == 1000:
            offset = hub.history.head  # the client's position when it dropped
        hub.publish(market.step(t0 + k * _MS), on_grid=True)
    everything = np.arange(len(hub))

    def resume() -> int:
        sub = hub.attach(lambda: None)
        hub.set_subscription(sub, True, np.empty(0, np.intp))
        missed: int | None = hub.resume(sub, hub.epoch, offset)
        assert missed is not None
        while (pending := hub.take(sub)) is not None:
            _frame(pending, False)
        hub.detach(sub)
        return missed

    def snapshot() -> int:
        sub = hub.attach(lambda: None)
        hub.set_subscription(sub, True, np.empty(0, np.intp))
        _frame(hub.snapshot(sub, everything), False)
        hub.detach(sub)
        return len(everything)

    missed = resume()
    return row(
        f"resume {missed_s:g} s missed on '*', default universe, JSON",
        _best_ms(resume),
        "ms",
        "a snapshot instead",
        _best_ms(snapshot),
        higher=False,
        note=f"{missed:,} updates replayed in order",
    )


def _best_ms(fn: Callable[[], object], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _replay_row(quick: bool) -> Row:
    """Ticks/s through the hub to one `*` subscriber: replay at speed 0 vs the live generator."""
    from tickwire.feed.record import Recorder
    from tickwire.simulators.replay import open_replay

    seconds = 3.0 if quick else 20.0
    uni = Universe.synthetic(500, 0)

    def through_hub(hub: Hub, batches: Iterator[TickBatch]) -> float:
        sub = hub.attach(lambda: None)
        hub.set_subscription(sub, True, np.empty(0, np.intp))
        n, t0 = 0, time.perf_counter()
        for batch in batches:
            hub.publish(batch, on_grid=True)
            pending = hub.take(sub)
            while pending is not None:
                _frame(pending, True)
                n += len(pending.records)
                pending = hub.take(sub)
        return n / (time.perf_counter() - t0)

    def live() -> Iterator[TickBatch]:
        market = Market(uni, seed=1, start_ns=0)
        return (market.step(k * _MS) for k in range(1, int(seconds * 1000) + 1))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ticks.parquet"
        rec = Recorder(path, uni)
        for batch in live():
            rec.write(batch, 0.0)
        rec.close(0.0)
        replay = open_replay([path], speed=0)

    def replayed() -> Iterator[TickBatch]:
        while not replay.finished:
            yield replay.step(0)

    live_rate = through_hub(Hub(uni, Market(uni, seed=1, start_ns=0).snapshot()), live())
    replay_rate = through_hub(Hub(uni, replay.snapshot()), replayed())
    return row(
        "replay at speed 0 from Parquet, 500 symbols, through the hub: ticks/s",
        replay_rate,
        "ticks/s",
        "the live generator",
        live_rate,
        higher=True,
        note=f"{replay.released:,} ticks",
    )
