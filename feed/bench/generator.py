"""Generator rows: ticks/s of `Market.step()` in 1 ms steps vs a per-symbol Python loop.

The baseline is the straightforward generator most tick simulators are: each 1 ms step visits every
symbol, draws whether it ticks at the model's own measured rate, moves its price by a random walk,
rounds bid/ask to the tick and appends a record; the step's records become a `TICK_DTYPE` array.
It produces the same kind and the same number of records per second as the model, so ticks/s
compare like with like. Imports numpy and the simulator only.
"""

from __future__ import annotations

import random
import time

import numpy as np

from tickwire.simulators import TICK_DTYPE, Market, Universe

from ._table import Row, row


def _model(n: int, sim_s: float) -> tuple[int, float]:
    """Ticks made and seconds taken by the real model stepping `sim_s` of market in 1 ms steps."""
    market = Market(Universe.synthetic(n, seed=1), seed=1, start_ns=0)
    ticks, t0 = 0, time.perf_counter()
    for k in range(1, round(sim_s * 1000) + 1):
        ticks += len(market.step(k * 1_000_000))
    return ticks, time.perf_counter() - t0


def naive_loop(universe: Universe, sim_s: float, ticks_per_s: float) -> tuple[int, float]:
    """The baseline: a per-symbol, per-step Python loop; returns (ticks made, seconds taken)."""
    n = len(universe)
    rng = random.Random(1)
    price = universe.price.tolist()
    tick = universe.tick_size.tolist()
    lot = universe.lot_size.tolist()
    act = universe.activity.tolist()
    total_act = sum(act) or 1.0
    p_tick = [ticks_per_s * a / total_act * 0.001 for a in act]  # per symbol per 1 ms step
    seq = [0] * n
    volume = [0] * n
    made, t0 = 0, time.perf_counter()
    for step in range(round(sim_s * 1000)):
        ts = step * 1_000_000
        records = []
        for i in range(n):
            if rng.random() >= p_tick[i]:
                continue
            price[i] *= 1.0 + rng.gauss(0.0, 2e-4)
            bid = round(price[i] / tick[i] - 0.5) * tick[i]
            ask = bid + tick[i]
            trade = rng.random() < 0.3
            size = lot[i] * rng.randint(1, 10)
            if trade:
                volume[i] += size
            seq[i] += 1
            last = ask if trade else bid
            records.append((ts, seq[i], bid, ask, last, volume[i], i, int(trade), size, size, size))
        if records:
            made += len(np.array(records, dtype=TICK_DTYPE))
    return made, time.perf_counter() - t0


def generator_rows(quick: bool) -> list[Row]:
    rows = []
    for n, sim_s, naive_s, real_time_target in (
        (500, 0.5 if quick else 4.0, 0.2 if quick else 1.0, 20),
        (5000, 0.2 if quick else 2.0, 0.05 if quick else 0.3, 3),
    ):
        ticks, secs = _model(n, sim_s)
        rate = ticks / sim_s  # the model's ticks per simulated second: the baseline makes as many
        b_ticks, b_secs = naive_loop(Universe.synthetic(n, seed=1), naive_s, rate)
        label = f"generator, {n} symbols, 1 ms steps"
        rows.append(
            row(
                f"{label}: ticks/s",
                ticks / secs,
                "t/s",
                "python loop",
                b_ticks / b_secs,
                higher=True,
                target=">= 1M/core, >= 20x" if n == 500 else "",
                model_ticks=ticks,
                baseline_ticks=b_ticks,
            )
        )
        rows.append(
            row(
                f"{label}: x real time",
                sim_s / secs,
                "x",
                "python loop",
                naive_s / b_secs,
                higher=True,
                target=f">= {real_time_target}x real time",
            )
        )
    return rows
