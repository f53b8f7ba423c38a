"""Memory rows: server RSS per idle subscribed connection, and RSS growth behind a stalled reader.

- Idle: N connections (1000 with --full) each subscribed to one quiet symbol; the server's RSS after
  minus before, per connection; tickwire vs plain trio-websocket.
- Stalled: one raw client subscribes to `*` and never reads (tiny receive buffer). RSS growth over
  the window after its kernel buffers filled, minus the same server's growth over the same window
  with no client (the control): tickwire conflates (at most one pending record per symbol), while
  `websockets.broadcast` (the peer) keeps writing into its buffer. tickwire's stall limit is raised
  past the window so the connection is measured, not closed.
RSS comes from /proc; it moves in pages and allocator arenas, so small N are rough.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from tickwire.simulators import TICK_DTYPE, Universe

from . import _procs
from ._table import Row, row


def idle_n(quick: bool, full: bool) -> int:
    return 20 if quick else (1000 if full else 200)


def stall_s(quick: bool) -> float:
    return 0.5 if quick else 10.0


def _idle_kib(kind: str, n: int, settle_s: float) -> float:
    extra = ("--max-connections", str(n + 100)) if kind == "tickwire" else ()
    quiet = Universe.default().symbols[-1]
    with _procs.server(kind, *extra) as (server, url):
        _procs.settle(settle_s)
        before = _procs.rss_kib(server.pid)
        client = _procs.spawn(
            "tickwire.feed.bench._loadclient",
            *("idle", url, str(n), quiet, "--warmup", str(settle_s)),
            stdin=True,
        )
        try:
            if (line := _procs.readline(client, 30 + n * 0.05)) != "ready":
                raise RuntimeError(f"idle client said {line!r}")
            _procs.settle(settle_s)
            after = _procs.rss_kib(server.pid)
        finally:
            _procs.stop(client)
    return (after - before) / n


def _rss_growth_kib(pid: int, window_s: float) -> float:
    """Median RSS over the window's last stretch minus over its first: allocator and page noise
    (the market's chunk arrays come and go) is about 1 MiB either way, so single reads mislead."""
    stretch = min(1.0, window_s / 4)

    def median_over(seconds: float) -> float:
        samples, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            samples.append(_procs.rss_kib(pid))
            time.sleep(0.05)
        return float(statistics.median(samples))

    first = median_over(stretch)
    time.sleep(window_s - 2 * stretch)  # the measured window itself
    return median_over(stretch) - first


def _stalled_growth_kib(kind: str, stalled: bool, window_s: float, settle_s: float) -> float:
    """RSS growth of server `kind` over the window, with one stalled '*' client or none."""
    extra = ("--stall-ms", str(int(window_s * 1000) + 30_000)) if kind == "tickwire" else ()
    with _procs.server(kind, *extra) as (server, url):
        client = None
        if stalled:
            client = _procs.spawn("tickwire.feed.bench._loadclient", "stalled", url, stdin=True)
        try:
            if client is not None and (line := _procs.readline(client, 30)) != "ready":
                raise RuntimeError(f"stalled client said {line!r}")
            _procs.settle(settle_s)  # the socket buffers fill; what grows after is the server's
            return _rss_growth_kib(server.pid, window_s)
        finally:
            if client is not None:
                _procs.stop(client)


def memory_rows(quick: bool, full: bool, advance: Callable[[str], None]) -> list[Row]:
    n, window = idle_n(quick, full), stall_s(quick)
    settle = 0.3 if quick else 1.0
    idle = {}
    for kind in ("tickwire", "plain"):
        advance(f"memory: {n} idle connections, {kind}")
        idle[kind] = _idle_kib(kind, n, settle)
    stalled = {}
    for kind in ("tickwire", "peer"):
        advance(f"memory: one stalled '*' subscriber, {kind}")
        grown = _stalled_growth_kib(kind, True, window, settle)
        advance(f"memory: no subscriber (control), {kind}")
        stalled[kind] = grown - _stalled_growth_kib(kind, False, window, settle)
    bound_kib = len(Universe.default()) * TICK_DTYPE.itemsize / 1024
    label = f"RSS growth, one stalled '*' subscriber, {window:g} s, minus control"
    return [
        row(
            f"RSS per idle subscribed connection (N={n})",
            idle["tickwire"],
            "KiB",
            "plain",
            idle["plain"],
            higher=False,
            target="<= 16 KiB",
        ),
        row(
            label,
            stalled["tickwire"],
            "KiB",
            "peer",
            stalled["peer"],
            higher=False,
        ),
        row(
            f"{label}, vs 1 record/symbol",
            stalled["tickwire"],
            "KiB",
            "bound",
            bound_kib,
            higher=False,
            target="<= 1x (+ RSS page noise)",
        ),
    ]
