"""Binance depth rows: the diff-depth stream's cost beside `/v1` book updates, and REST depth
under stream load. Each side runs against its own fresh `tickwire serve --book-depth 20` process
(the default universe); load clients are `_loadclient` processes. Imports no trio: everything
runs in other processes.

- Diff depth: N=100 connections, each on its own 10 symbols (`pick10`), open a combined stream of
  their `@depth@100ms`; the baseline is N `/v1` JSON connections on the same symbols with
  `"book": true`. Server CPU (/proc, over the window) per delivered book message is the issue's
  figure (goal <= 1.5x): a Binance message carries 100 ms of conflated changes of one symbol, a
  `/v1` `book` message one flush's changes of a connection's symbols, so CPU per delivered level
  update is shown too.
- REST depth: N=100 `/v1` stream clients on their 10 symbols (ticks only), and the streams'
  tick p99 beside a run without REST load (goal: <= 1.2x) while bots poll
  `GET /binance/api/v3/depth?symbol=AAPL&limit=100` as real ones may: 10 of them, each from its
  own loopback address at Binance's default weight budget (20 polls a second each: 6000 weight
  a minute, 5 a poll), under the server's default limit; quiet and polled runs alternate twice
  and each side's latencies are pooled. Then one keep-alive client from one
  address asks as fast as it is answered (its limit lifted): the requests/s and p99 the server
  sustains beside the streams, and the streams' p99 under that closed loop, shown without a
  goal (on two cores, a closed loop keeps a core busy between its client and the server).
The REST clients are threads of the bench's process.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray

from ._procs import server
from ._table import NAN, Row, row, unavailable
from .fanout import load_on
from .venues import NO_WEIGHT_LIMIT, binance_clients, cpu_per_msg_row, served, v1_clients

N = 100
_BOOKS = ("--book-depth", "20")
_DEPTH_PATH = "/binance/api/v3/depth?symbol=AAPL&limit=100"
# Bots as they poll: Binance allows an address 6000 request weight a minute (tickwire's default
# too), and depth?limit=100 weighs 5, so a bot may poll it 20 times a second (ccxt's binance
# waits its rateLimit, 50 ms, between calls: the same 20). Ten of them, each from its own
# loopback address (so each has its own budget, under the server's default limit), poll 200
# times a second: the load a real crowd of bots can put on the REST API.
BOTS = 10
ROUNDS = 2  # quiet and polled runs, alternated: the row is noisy on a shared 2-core machine
BOT_PER_S = 6000 / 60 / 5
_BOTS_NOTE = (
    f"REST load: {BOTS} bots, each from its own address, polling depth?limit=100 at Binance's "
    f"default weight budget ({BOT_PER_S:.0f}/s each, never refused), as ccxt and "
    "python-binance poll; the closed-loop client beside it asks as fast as it is answered "
    "from one address, 20-40x the budget (its limit lifted to measure the rate)"
)


def diff_depth_rows(window_s: float) -> list[Row]:
    v1 = served(_BOOKS, v1_clients("--book"), N, window_s, 1.0, "book_msgs", "levels")
    bn = served(
        _BOOKS, binance_clients("--kinds", "depth@100ms"), N, window_s, 1.0, "msgs", "levels"
    )
    label = f"Binance diff depth N={N} x 10 symbols (@depth@100ms)"
    base = "/v1 book updates (JSON)"
    return [
        cpu_per_msg_row(
            label, bn, base, v1, msgs_per_s=bn["msgs_per_s"], baseline_msgs_per_s=v1["msgs_per_s"]
        ),
        row(
            f"{label}: server CPU/level update",
            bn["cpu_us_unit"],
            "us",
            base,
            v1["cpu_us_unit"],
            higher=False,
            levels_per_s=bn["units_per_s"],
            baseline_levels_per_s=v1["units_per_s"],
        ),
    ]


class _RestLoad:
    """One keep-alive client asking for REST depth until stopped, in a thread of the bench:
    as fast as it is answered (`period_s` 0, a closed loop), or one request every `period_s`
    (a bot polling at a fixed rate), from its own loopback address `source` if given."""

    def __init__(self, url: str, period_s: float = 0.0, source: str | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.period_s = period_s
        self.source = source
        self.stop = threading.Event()
        self.lat_s: list[float] = []
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        address = None if self.source is None else (self.source, 0)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10, source_address=address)
        due = time.perf_counter()
        try:
            while not self.stop.is_set():
                if self.period_s:  # the bot's pace: its next poll is due one period on
                    self.stop.wait(max(0.0, due - time.perf_counter()))
                    due = max(due + self.period_s, time.perf_counter())
                t0 = time.perf_counter()
                conn.request("GET", _DEPTH_PATH)
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    self.error = f"GET {_DEPTH_PATH}: HTTP {answer.status}"
                    return
                self.lat_s.append(time.perf_counter() - t0)
        except OSError as exc:
            self.error = f"GET {_DEPTH_PATH}: {exc}"
        finally:
            conn.close()


def _bots(url: str) -> list[_RestLoad]:
    """BOTS bots, each from its own loopback address, polling at its weight budget."""
    return [_RestLoad(url, 1 / BOT_PER_S, f"127.0.0.{2 + k}") for k in range(BOTS)]


def _hammer(url: str) -> list[_RestLoad]:
    return [_RestLoad(url)]


def _streams(
    loads: Callable[[str], list[_RestLoad]] | None, window_s: float, *serve: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """The streams' tick latencies (ms) over the window, the REST clients' request latencies
    (ms) and their requests/s if `loads` makes any (they run from before the streams connect
    until the window ends)."""

    with server("tickwire", *_BOOKS, *serve) as (proc, url):
        rest = [] if loads is None else loads(url)
        for load in rest:
            load.thread.start()
        try:
            t0 = time.perf_counter()
            results, _, _ = load_on([url], [proc.pid], v1_clients(), N, window_s, 1.0)
            wall = time.perf_counter() - t0
        finally:
            for load in rest:
                load.stop.set()
            for load in rest:
                load.thread.join(15)
    for load in rest:
        if load.error is not None:
            raise RuntimeError(load.error)
    lat = np.array([x for r in results for x in r["lat_ns"]], np.float64) / 1e6
    rest_lat = np.array([x for load in rest for x in load.lat_s], np.float64) * 1e3
    return lat, rest_lat, len(rest_lat) / wall


def _pct(chunks: list[NDArray[np.float64]], q: float) -> float:
    pooled = np.concatenate(chunks) if chunks else np.empty(0)
    return float(np.percentile(pooled, q)) if len(pooled) else NAN


def rest_depth_rows(window_s: float) -> list[Row]:
    quiet, polled, polls, rates = [], [], [], []
    for _ in range(ROUNDS):  # alternated and pooled: a drift in the machine's load hits both
        quiet.append(_streams(None, window_s)[0])
        lat, rest_lat, rate = _streams(_bots, window_s)  # the server's default weight limit
        polled.append(lat)
        polls.append(rest_lat)
        rates.append(rate)
    hammered, hammer_lat, hammer_rate = _streams(_hammer, window_s, *NO_WEIGHT_LIMIT)
    label = f"REST depth?limit=100 beside N={N} stream clients"
    base = _pct(quiet, 99)
    return [
        row(
            f"{label}: streams' tick p99, {BOTS} bots at their weight budget",
            _pct(polled, 99),
            "ms",
            "no REST load",
            base,
            higher=False,
            target="<= 1.2x",
            rest_req_per_s=sum(rates) / len(rates),
            rest_p99_ms=_pct(polls, 99),
            note=_BOTS_NOTE,
        ),
        row(
            f"{label}: streams' tick p99, one client as fast as answered",
            _pct([hammered], 99),
            "ms",
            "no REST load",
            base,
            higher=False,
            rest_req_per_s=hammer_rate,
        ),
        row(f"{label}: requests/s", hammer_rate, "req/s", higher=True),
        row(
            f"{label}: request p99",
            _pct([hammer_lat], 99),
            "ms",
            higher=False,
            rest_p50_ms=_pct([hammer_lat], 50),
        ),
    ]


def depth_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
    if quick:
        what = f"Binance diff depth and REST depth, N={N}"
        return [unavailable(what, "not in --quick (four servers under N=100 clients)")]
    window_s = 4.0
    advance("Binance diff depth vs /v1 book updates")
    rows = diff_depth_rows(window_s)
    advance("REST depth beside stream clients")
    return rows + rest_depth_rows(window_s)
