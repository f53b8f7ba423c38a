"""The machine's physical limit: small send() calls/s and loopback bytes/s of a raw socket pair.

One process writes, a forked one reads, as a server process and a client process would. Run as
`python -m tickwire.feed.bench.physical [--quick]` (a fresh single-threaded process, so forking is
safe); it prints one JSON line. `physical_rows` reports the raw figures and tickwire's best fan-out
as fractions of them (linked after the fan-out rows ran). Imports the stdlib only.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time

from ._table import Row, row

SMALL_B = 300  # about one JSON message of one or two ticks, with its WebSocket header
BIG_B = 65536


def probe(quick: bool) -> dict[str, float]:
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the reader
        a.close()
        while b.recv(1 << 20):
            pass
        os._exit(0)
    b.close()
    secs = 0.3 if quick else 1.5
    small = b"x" * SMALL_B
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < secs:
        for _ in range(1000):
            a.send(small)
        n += 1000
    sends = n / elapsed
    big = memoryview(b"x" * BIG_B)
    total, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < secs:
        for _ in range(50):
            total += a.send(big)
    a.close()
    os.waitpid(pid, 0)
    return {"sends_per_s": sends, "bytes_per_s": total / elapsed}


def physical_rows(res: dict[str, float], fanout: list[Row]) -> list[Row]:
    """Raw limits, and tickwire's best delivered msgs/s and bytes/s as fractions of them."""
    rows = [
        row(
            f"raw send() calls/s, {SMALL_B} B, socket pair", res["sends_per_s"], "c/s", higher=True
        ),
        row("raw loopback bytes/s, socket pair", res["bytes_per_s"], "B/s", higher=True),
    ]
    best_msgs = _best(fanout, "msgs_per_s")
    best_bytes = _best(fanout, "bytes_per_s")
    if math.isfinite(best_msgs):
        rows.append(
            row(
                "tickwire best msgs/s vs raw send() calls/s",
                best_msgs,
                "m/s",
                "raw send()",
                res["sends_per_s"],
                higher=True,
            )
        )
    if math.isfinite(best_bytes):
        rows.append(
            row(
                "tickwire best bytes/s vs raw loopback bytes/s",
                best_bytes,
                "B/s",
                "raw bytes",
                res["bytes_per_s"],
                higher=True,
            )
        )
    return rows


def _best(rows: list[Row], key: str) -> float:
    values = [v for r in rows if (v := r.get(key)) is not None and math.isfinite(v)]
    return max(values, default=math.nan)


if __name__ == "__main__":
    print(json.dumps(probe("--quick" in sys.argv[1:])), flush=True)
