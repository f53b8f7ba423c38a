"""Order book rows: what books cost the market step, and how fast the book makes level updates.

- CPU of `Market.step` in 1 ms steps on the default universe with books (`step_book`, 20 levels)
  vs the same market without, each step followed by a slice of the next chunk as the live
  server makes it (`make_ahead`), both from the open after an untimed warm-up (the Hawkes
  excitation settles in ~30 s); CPU time of this thread, so other processes weigh less.
- Level updates made per CPU second at 500 symbols, beside the ticks per CPU second of the same
  market without books (the generator's own figure, for scale).
Imports numpy and the simulator only.
"""

from __future__ import annotations

import math
import time

from tickwire.simulators import Market, Universe

from ._table import Row, row

DEPTH = 20
# symbols (0: the default universe), untimed warm-up s, timed simulated s
_SIZES = {False: ((0, 20.0, 10.0), (500, 5.0, 3.0)), True: ((0, 3.0, 2.0), (500, 1.0, 1.0))}


def _run(n: int, warm_s: float, sim_s: float, books: bool) -> tuple[int, int, float]:
    """(ticks, level updates, CPU s) of `sim_s` in 1 ms steps after `warm_s` of warm-up."""
    universe = Universe.default() if n == 0 else Universe.synthetic(n, seed=1)
    market = Market(universe, seed=1, start_ns=0, book_depth=DEPTH if books else None)
    for k in range(1, math.ceil(warm_s) + 1):  # untimed, a second at a time
        market.step(round(min(k, warm_s) * 1e9))
    start = round(warm_s * 1000)
    ticks = updates = 0
    cpu = time.thread_time()
    for k in range(start + 1, start + round(sim_s * 1000) + 1):
        if books:
            t, lv = market.step_book(k * 1_000_000)
            ticks, updates = ticks + len(t), updates + len(lv)
        else:
            ticks += len(market.step(k * 1_000_000))
        market.make_ahead()  # as the live server does once a step's records are sent
    return ticks, updates, time.thread_time() - cpu


def book_rows(quick: bool) -> list[Row]:
    (n0, warm0, sim0), (n1, warm1, sim1) = _SIZES[quick]
    _, updates, with_s = _run(n0, warm0, sim0, True)
    ticks, _, without_s = _run(n0, warm0, sim0, False)
    rows = [
        row(
            "market step with books (20 levels), default universe, 1 ms steps: CPU per sim s",
            with_s / sim0 * 1e3,
            "ms",
            "without books",
            without_s / sim0 * 1e3,
            higher=False,
            target="<= 2x",
            level_updates_per_sim_s=updates / sim0,
            ticks_per_sim_s=ticks / sim0,
        )
    ]
    t1, updates1, secs1 = _run(n1, warm1, sim1, True)
    ticks2, _, secs2 = _run(n1, warm1, sim1, False)
    rows.append(
        row(
            f"book level updates generated, {n1} symbols: updates/s per core",
            updates1 / secs1,
            "u/s",
            "ticks/s without books",
            ticks2 / secs2,
            higher=True,
            target=">= 1M/core",
            level_updates=updates1,
            updates_per_tick=updates1 / max(t1, 1),
        )
    )
    return rows
