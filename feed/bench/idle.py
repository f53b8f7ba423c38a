"""Idle CPU row: what `tickwire serve` costs with no client at all.

Issue 9 measured 0.16 core for the default universe at the 1 ms cadence with nobody connected;
the goal is <= 0.03. The baseline, in the same run, is the floor of any 1 ms trio loop: a process
that only does `await trio.sleep(0.001)` forever (`python -m tickwire.feed.bench.idle`). CPU is
/proc utime + stime over a window after a settle; the bench process itself never imports trio.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

from . import _procs
from ._table import Row, row


def window_s(quick: bool) -> float:
    return 0.5 if quick else 5.0


def _cores(pid: int, seconds: float) -> float:
    cpu0, t0 = _procs.cpu_s(pid), time.perf_counter()
    _procs.settle(seconds)  # the measured window itself
    return (_procs.cpu_s(pid) - cpu0) / (time.perf_counter() - t0)


def idle_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
    settle, window = (0.3, window_s(quick)) if quick else (2.0, window_s(quick))
    advance("idle CPU: tickwire serve")
    with _procs.server("tickwire") as (server, _url):
        _procs.settle(settle)
        served = _cores(server.pid, window)
    advance("idle CPU: a trio loop sleeping 1 ms")
    sleeper = _procs.spawn("tickwire.feed.bench.idle")
    try:
        if (line := _procs.readline(sleeper)) != "ready":
            raise RuntimeError(f"the sleeping loop said {line!r}")
        _procs.settle(settle)
        floor = _cores(sleeper.pid, window)
    finally:
        _procs.stop(sleeper, grace_s=0)
    return [
        row(
            "idle server CPU, default universe, 1 ms cadence, no client",
            served,
            "core",
            "trio sleep(1 ms) loop",
            floor,
            higher=False,
            target="<= 0.03 core",
        )
    ]


def _sleep_forever() -> None:
    import trio

    async def main() -> None:
        print("ready", flush=True)
        while True:
            await trio.sleep(0.001)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)


if __name__ == "__main__":
    if sys.argv[1:]:
        sys.exit("usage: python -m tickwire.feed.bench.idle  (a trio loop that sleeps 1 ms)")
    _sleep_forever()
