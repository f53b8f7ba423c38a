"""Generator rows: ticks/s of `Market.step()` in 1 ms steps vs two baselines of the same model.

Both baselines (`_genbaselines.py`) make the records `Market` makes (`TICK_DTYPE`, one per update,
in time order), from the same model in its essentials (see `naive_loop` there), each written the
way it usually is:
- "python loop": per 1 ms step, per symbol, plain Python (`random`, `math`), the straightforward
  generator the issue asks us to beat 20x;
- "numpy per step": vectorised over symbols, but each 1 ms step computed on its own (no chunks),
  the design issue 3 expected chunked generation to beat 5-20x.
All three run from the open: `Market` is first stepped through an untimed warm-up (its Hawkes
excitation starts at zero and takes ~30 s to settle), and the baselines start with the mean
excitation it has in the middle of its timed span, so all three make about as many ticks per
simulated second (the rows carry those rates) and ticks/s compare like with like.
Every one of the three is single-threaded work (numpy's element-wise operations run on the
calling thread), timed on the thread's CPU clock (`time.thread_time`): on a shared machine the
wall clock also counts the time the OS gave other processes, which made the rows vary ~3x as
much from run to run. So ticks/s is per CPU second of one core, and "x real time" how much
faster than the clock one core makes the market.
Imports numpy and the simulator only.
"""

from __future__ import annotations

import math
import time

from tickwire.simulators import Market, Universe

from ._genbaselines import naive_loop, numpy_per_step
from ._table import Row, row


def _model(n: int, sim_s: float, start_s: float) -> tuple[int, float]:
    """Ticks made and thread CPU seconds taken by `Market` stepping `sim_s` in 1 ms steps after
    `start_s`."""
    market = Market(Universe.synthetic(n, seed=1), seed=1, start_ns=0)
    for k in range(1, math.ceil(start_s) + 1):  # untimed, a second at a time
        market.step(round(min(k, start_s) * 1e9))
    start = round(start_s * 1000)
    ticks, t0 = 0, time.thread_time()
    for k in range(start + 1, start + round(sim_s * 1000) + 1):
        ticks += len(market.step(k * 1_000_000))
    return ticks, time.thread_time() - t0


# Per row: symbols, untimed warm-up, then the simulated seconds timed for the model, the python
# loop and numpy per step, and the real-time target. The warm-up lets the Hawkes excitation grow
# (its mean settles with time constant tau / (1 - eta), ~6.7 s: 30 s is ~99% of the steady rate,
# 10 s ~78%); each baseline's span is cut so it runs about as long as the model (0.1-0.4 s).
_SIZES = {
    False: ((500, 30.0, 10.0, 0.15, 1.5, 20), (5000, 10.0, 3.0, 0.02, 0.4, 3)),
    True: ((500, 5.0, 1.0, 0.03, 0.3, 20), (5000, 2.0, 1.0, 0.004, 0.1, 3)),
}


def generator_rows(quick: bool) -> list[Row]:
    rows = []
    for n, warm_s, sim_s, loop_s, per_step_s, real_time_target in _SIZES[quick]:
        universe = Universe.synthetic(n, seed=1)
        ticks, secs = _model(n, sim_s, warm_s)
        mid_s = warm_s + sim_s / 2  # the baselines start as excited as the model is on average
        l_ticks, l_secs = naive_loop(universe, loop_s, mid_s)
        s_ticks, s_secs = numpy_per_step(universe, per_step_s, mid_s)
        label = f"generator, {n} symbols, 1 ms steps"
        rates = {  # ticks per simulated second: the three make about as many
            "model_ticks_per_sim_s": ticks / sim_s,
            "loop_ticks_per_sim_s": l_ticks / loop_s,
            "per_step_ticks_per_sim_s": s_ticks / per_step_s,
        }
        rows.append(
            row(
                f"{label}: ticks/s",
                ticks / secs,
                "t/s",
                "python loop",
                l_ticks / l_secs,
                higher=True,
                target=">= 1M/core, >= 20x" if n == 500 else "",
                model_ticks=ticks,
                baseline_ticks=l_ticks,
                **rates,
            )
        )
        rows.append(
            row(
                f"{label}: ticks/s vs numpy per step",
                ticks / secs,
                "t/s",
                "numpy per step",
                s_ticks / s_secs,
                higher=True,
                target="5-20x",
                model_ticks=ticks,
                baseline_ticks=s_ticks,
            )
        )
        rows.append(
            row(
                f"{label}: x real time",
                sim_s / secs,
                "x",
                "python loop",
                loop_s / l_secs,
                higher=True,
                target=f">= {real_time_target}x real time",
            )
        )
    return rows
