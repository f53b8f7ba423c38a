"""Order book fan-out rows: server CPU per delivered level update vs per delivered tick.

N=100 load clients (`_loadclient count`, 1-2 processes), each on its own 10 symbols of the
default universe, against `tickwire serve --book-depth 20`: once with `"book": true` on every
subscription, once without (the baseline: today's tick fan-out, same server, same market). The
figure is the books run's server CPU over everything it delivered (level updates and ticks: at
~20 level updates a tick, mostly the former); the baseline is the server CPU per tick delivered
without books. Both include the market's generation, as the fan-out rows count it; a difference
of the two runs' CPU would be noise whenever the machine is saturated. JSON and binary each.
Server CPU is /proc utime + stime over the window. Tick latency rises with books because every
1 ms flush then carries a `book` message to each client (~100k frames/s to read for N=100): the
load clients' CPU (`client_cpu_pct`) says when they, not the server, set it. Imports no trio:
everything runs in other processes.
"""

from __future__ import annotations

import numpy as np

from . import fanout
from ._table import NAN, Row, row, unavailable

N = 100
DEPTH = "20"


def _load(binary: bool, book: bool, window_s: float) -> tuple[float, int, int, list[int], float]:
    """(server CPU s, ticks, level updates, tick latency samples ns, clients' CPU %) of a run."""

    def client_args(k: int, first: int) -> tuple[str, ...]:
        extra = ("--book",) if book else ()
        return ("count", str(k), str(first), "1" if binary else "0", "pick10", *extra)

    results, cpu, _ = fanout.run_load(
        "tickwire", ("--book-depth", DEPTH), client_args, N, window_s, 1.0
    )
    ticks = sum(int(r["ticks"]) for r in results)
    levels = sum(int(r.get("levels", 0)) for r in results)
    client_pct = sum(float(r["cpu_s"]) for r in results) / window_s * 100
    return cpu, ticks, levels, [x for r in results for x in r["lat_ns"]], client_pct


def book_fanout_rows(quick: bool) -> list[Row]:
    if quick:
        what = f"book fan-out, N={N} x 10 symbols (20 levels): server CPU per delivered update"
        return [unavailable(what, "not in --quick (four servers under N=100 clients)")]
    window_s = 6.0
    rows = []
    for binary in (False, True):
        cpu_b, ticks_b, _, lat_b, _ = _load(binary, False, window_s)
        cpu_a, ticks_a, levels, lat, client_pct = _load(binary, True, window_s)
        per_tick = cpu_b / ticks_b * 1e6 if ticks_b else NAN
        per_update = cpu_a / (ticks_a + levels) * 1e6 if ticks_a + levels else NAN
        ms, ms_b = (
            np.percentile(np.array(x, np.float64) / 1e6, [50, 99]) if x else [NAN, NAN]
            for x in (lat, lat_b)
        )
        enc = "binary" if binary else "JSON"
        rows.append(
            row(
                f"book fan-out, N={N} x 10 symbols (20 levels), {enc}: server CPU per delivered "
                "update",
                per_update,
                "us",
                "per tick, no books",
                per_tick,
                higher=False,
                target="<= 1x",
                level_updates_per_s=levels / window_s,
                ticks_per_s=ticks_a / window_s,
                server_cpu_pct=cpu_a / window_s * 100,
                baseline_cpu_pct=cpu_b / window_s * 100,
                client_cpu_pct=client_pct,
                tick_p50_ms=float(ms[0]),
                tick_p99_ms=float(ms[1]),
                baseline_tick_p50_ms=float(ms_b[0]),
                baseline_tick_p99_ms=float(ms_b[1]),
            )
        )
    return rows
