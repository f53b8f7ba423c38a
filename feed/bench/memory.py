"""Memory rows: server RSS per idle subscribed connection, and RSS growth behind a stalled reader.

- Idle: 1000 connections (20 with --quick) each subscribed to one quiet symbol; the server's RSS
  after minus before, per connection; tickwire vs plain trio-websocket. Once on the default
  universe and once on 10,000 symbols at a thousandth of the default activity (the market's
  chunk arrays at full activity move RSS by tens of MiB, which would drown ~100 KiB a
  connection): a connection on one symbol must not pay for the universe. tickwire runs with
  `--history 0` here: its shared history of every update (~40 MiB a minute at the default
  universe) grows while the RSS is read, and would be counted as tens of KiB a connection.
- Stalled: one raw client subscribes to `*` and never reads (tiny receive buffer). RSS growth over
  the window after its kernel buffers filled, minus the same process's growth without it (the
  control: for tickwire, the same client subscribed to one quiet symbol only, in a window before
  and one after; for the peer, a window before with no client): tickwire conflates (at most one
  pending record per symbol), while `websockets.broadcast` (the peer) keeps writing into its
  buffer. tickwire's stall limit is raised past the windows so the connection is measured, not
  closed.
RSS comes from /proc; it moves in pages and allocator arenas, so small N are rough.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import numpy as np

from tickwire.simulators import TICK_DTYPE, Universe

from . import _procs
from ._table import Row, row

RSS_NOISE_KIB = 500.0  # RSS of an idle process moves by about this much over a few seconds


def idle_n(quick: bool, full: bool) -> int:
    return 20 if quick else 1000  # issue 6: "at 1000 connections"; ~5 s per server


def stall_s(quick: bool) -> float:
    return 0.5 if quick else 10.0


# The large universe of the second idle row (issue 11: ~90 KiB a connection there, before).
BIG_UNIVERSE = ("--symbols", "10000", "--activity", "0.001")


def _idle_kib(kind: str, n: int, settle_s: float, market: tuple[str, ...] = ()) -> float:
    # The history and the order books are the server's, not the connections': kept out of a
    # per-connection figure (with books, the server's RSS climbs for tens of seconds after
    # start: 34, 20 and 17.5 KiB "a connection" after 2, 5 and 10 s of settling, 11.7 without).
    extra: tuple[str, ...] = ()
    if kind == "tickwire":
        extra = ("--max-connections", str(n + 100), "--history", "0", "--book-depth", "0")
    big = "--symbols" in market
    uni = Universe.synthetic(int(market[market.index("--symbols") + 1])) if big else None
    quiet = (uni or Universe.default()).symbols[-1]
    with _procs.server(kind, *extra, *market) as (server, url):
        _procs.settle(settle_s)
        before = _rss_median_kib(server.pid, settle_s)
        client = _procs.spawn(
            "tickwire.feed.bench._loadclient",
            *("idle", url, str(n), quiet, "--warmup", str(settle_s)),
            stdin=True,
        )
        try:
            if (line := _procs.readline(client, 30 + n * 0.05)) != "connected":
                raise RuntimeError(f"idle client said {line!r}")
            assert client.stdin is not None
            client.stdin.write("subscribe\n")
            client.stdin.flush()
            if (line := _procs.readline(client, 30)) != "ready":
                raise RuntimeError(f"idle client said {line!r}")
            after = _rss_median_kib(server.pid, settle_s)
        finally:
            _procs.stop(client)
    return (after - before) / n


def _rss_median_kib(pid: int, window_s: float) -> float:
    """The median of 20 RSS reads a second over the window: the market's chunk arrays come and
    go (at 10k symbols, tens of MiB), so one read can land on either side of them."""
    kib: list[int] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < window_s or len(kib) < 5:
        kib.append(_procs.rss_kib(pid))
        time.sleep(0.05)
    return float(np.median(kib))


def _rss_growth_kib(pid: int, window_s: float) -> float:
    """RSS growth over the window as the least-squares slope of 20 reads a second, times the
    window: the market's chunk arrays come and go (about 1 MiB either way, once a second), so two
    single reads mislead; a trend through all of them does not."""
    t, kib = [], []
    t0 = time.perf_counter()
    while (now := time.perf_counter() - t0) < window_s:
        t.append(now)
        kib.append(_procs.rss_kib(pid))
        time.sleep(0.05)
    slope = float(np.polyfit(np.array(t), np.array(kib, dtype=np.float64), 1)[0])
    return slope * window_s


def _stalled_growth_kib(
    kind: str, window_s: float, settle_s: float, fill_s: float, watched_s: float
) -> tuple[float, float]:
    """RSS growth of one server process with one stalled '*' client over a window, and over
    the control. The server warms up for `settle_s` first (its RSS climbs for ~10 s after
    start, then wanders by about +-0.5 MiB).

    tickwire's control is the same client subscribed to one quiet symbol only, in a window
    before the '*' one and in one after it (their mean: a trend of the process's own cancels
    out): a market someone watches publishes every step, which grows the shared history and
    the record of changes as fast whether its subscriber reads or not (an unwatched one steps
    rarely), so only the '*' subscription's stall tells the windows apart. The peer's control
    is a window before it with no client (it has no subscriptions: a client gets everything)."""
    tickwire = kind == "tickwire"
    # `--history 0`: the shared history grows for its first minute, as fast in every window;
    # it is the server's, sized by --history-mb and measured by its own rows.
    stall = ("--stall-ms", str(int(window_s * 1000) + 60_000), "--history", "0")
    extra = stall if tickwire else ()
    with _procs.server(kind, *extra) as (server, url):
        _procs.settle(settle_s)
        client = None
        try:
            if tickwire:
                client = _stalled_client(url, Universe.default().symbols[-1])
                # The record of changes (its last 4096 generations) fills in a few seconds of a
                # watched market; the windows compare what comes after.
                _procs.settle(watched_s)
            control = _rss_growth_kib(server.pid, window_s)
            if client is None:
                client = _stalled_client(url)
            else:
                _tell(client, "+*")  # and now everything
            _procs.settle(fill_s)  # the socket buffers fill; what grows after is the server's
            grown = _rss_growth_kib(server.pid, window_s)
            if tickwire:
                _tell(client, "-*")
                _procs.settle(fill_s)
                control = (control + _rss_growth_kib(server.pid, window_s)) / 2
            return grown, control
        finally:
            if client is not None:
                _procs.stop(client)


def _stalled_client(url: str, *symbol: str) -> subprocess.Popen[str]:
    client = _procs.spawn("tickwire.feed.bench._loadclient", "stalled", url, *symbol, stdin=True)
    if (line := _procs.readline(client, 30)) != "ready":
        _procs.stop(client)
        raise RuntimeError(f"stalled client said {line!r}")
    return client


def _tell(client: subprocess.Popen[str], line: str) -> None:
    assert client.stdin is not None
    client.stdin.write(line + "\n")
    client.stdin.flush()
    if (answer := _procs.readline(client, 30)) != "ready":
        raise RuntimeError(f"stalled client said {answer!r}")


def memory_rows(quick: bool, full: bool, advance: Callable[[str], None]) -> list[Row]:
    n, window = idle_n(quick, full), stall_s(quick)
    settle = 0.3 if quick else 2.0
    idle, idle_big = {}, {}
    for kind in ("tickwire", "plain"):
        advance(f"memory: {n} idle connections, {kind}")
        idle[kind] = _idle_kib(kind, n, settle)
        advance(f"memory: {n} idle connections, 10k symbols, {kind}")
        idle_big[kind] = _idle_kib(kind, n, settle, BIG_UNIVERSE)
    stalled = {}
    for kind in ("tickwire", "peer"):
        advance(f"memory: one stalled '*' subscriber, {kind}")
        times = (0.3, 0.3, 0.3) if quick else (5.0, 1.0, 10.0)  # settle, fill, watched
        grown, control = _stalled_growth_kib(kind, window, *times)
        stalled[kind] = grown - control
    bound_kib = len(Universe.default()) * TICK_DTYPE.itemsize / 1024
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
            f"RSS per idle subscribed connection, 10k symbols (N={n})",
            idle_big["tickwire"],
            "KiB",
            "plain",
            idle_big["plain"],
            higher=False,
            target="<= 16 KiB",  # one symbol's state, not the universe's (~90 KiB dense)
        ),
        row(
            f"RSS growth, one stalled '*' subscriber, {window:g} s (minus control)",
            stalled["tickwire"],
            "KiB",
            "peer",
            stalled["peer"],
            higher=False,
            # bounded: the pending set of every symbol, plus what RSS moves by on its own
            target=f"<= {bound_kib + RSS_NOISE_KIB:.0f} KiB",
            base_noise=RSS_NOISE_KIB,
        ),
    ]
