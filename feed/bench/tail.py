"""The `tail --count 1` row: a one-shot command's whole cost, process start to exit.

What a user waits for when they type `tickwire tail AAPL --count 1`: interpreter start, imports,
connect, subscribe, one tick, the close, exit. The baseline, in the same run and against the same
`tickwire serve`, is a plain `websockets` client script doing the same (`_plain_tail.py`), so the
ratio is tickwire's own overhead over the interpreter, the socket and the server. A second row
holds the same runs against merely importing what the client library is built on (numpy, trio,
trio-websocket, orjson): what tickwire adds to its dependencies' start-up. Runs alternate, and
the median of each is kept. Imports no trio.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from . import _procs
from ._table import Row, row

SYMBOL = "AAPL"
_TIMEOUT_S = 30.0


def runs(quick: bool) -> int:
    return 1 if quick else 11


def tickwire_cmd(*args: str) -> list[str]:
    """The real `tickwire` console script beside this interpreter (else `python -m`)."""
    script = os.path.join(os.path.dirname(sys.executable), "tickwire")
    if os.path.exists(script):
        return [script, *args]
    return [sys.executable, "-m", "tickwire.feed.cli.main", *args]


def imports_cmd() -> list[str]:
    """Only importing the client library's dependencies, then one line: their start-up floor."""
    return [sys.executable, "-c", "import numpy, orjson, trio, trio_websocket; print('ok')"]


def plain_cmd(url: str) -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    return [sys.executable, os.path.join(here, "_plain_tail.py"), url, SYMBOL]


def once_s(cmd: list[str]) -> float:
    """Wall time of one run of `cmd`, start to exit; it must print one line and exit 0."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    took = time.perf_counter() - t0
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != 1:
        err = proc.stderr.strip().splitlines()
        raise RuntimeError(
            f"{' '.join(cmd[:3])} exited {proc.returncode} with {len(lines)} lines"
            f"{': ' + err[-1] if err else ''}"
        )
    return took


def tail_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
    advance("tail --count 1 vs a websockets script")
    kinds = ("tail", "plain", "imports")
    took: dict[str, list[float]] = {k: [] for k in kinds}
    with _procs.server("tickwire") as (_server, url):
        cmds = {
            "tail": tickwire_cmd("tail", SYMBOL, "--count", "1", "--url", url),
            "plain": plain_cmd(url),
            "imports": imports_cmd(),
        }
        if not quick:  # the first run of each fills the OS's file cache: not counted
            for kind in kinds:
                once_s(cmds[kind])
        for _ in range(runs(quick)):
            for kind in kinds:
                took[kind].append(once_s(cmds[kind]))
    tail_ms, plain_ms, imports_ms = (statistics.median(took[k]) * 1000 for k in kinds)
    name = f"tail {SYMBOL} --count 1, process start to exit"
    return [
        row(
            name,
            tail_ms,
            "ms",
            "websockets script",
            plain_ms,
            higher=False,
            target="< 1000 ms, <= 1.5x",
        ),
        row(
            f"{name}, vs its imports",
            tail_ms,
            "ms",
            "numpy+trio+trio-websocket",
            imports_ms,
            higher=False,
        ),
    ]
