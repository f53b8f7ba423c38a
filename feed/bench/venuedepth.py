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
- REST depth: N=100 `/v1` stream clients on their 10 symbols (ticks only) with, in the bench's
  process, one keep-alive HTTP client asking `GET /binance/api/v3/depth?symbol=AAPL&limit=100`
  as fast as it is answered: its requests/s and p99, and the streams' tick p99 beside a run
  without REST load (goal: <= 1.2x).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ._procs import server
from ._table import NAN, Row, row, unavailable
from .fanout import load_on
from .venues import NO_WEIGHT_LIMIT, binance_clients, cpu_per_msg_row, served, v1_clients

N = 100
_BOOKS = ("--book-depth", "20")
_DEPTH_PATH = "/binance/api/v3/depth?symbol=AAPL&limit=100"


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
    """One keep-alive client asking for REST depth until stopped, in a thread of the bench."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.stop = threading.Event()
        self.lat_s: list[float] = []
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            while not self.stop.is_set():
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


def _streams(rest: bool, window_s: float) -> tuple[float, dict[str, Any]]:
    """The streams' tick p99 (ms) over the window, and the REST client's figures if `rest`."""

    with server("tickwire", *_BOOKS, *NO_WEIGHT_LIMIT) as (proc, url):
        load = _RestLoad(url) if rest else None
        if load is not None:
            load.thread.start()
        try:
            t0 = time.perf_counter()
            results, _, _ = load_on([url], [proc.pid], v1_clients(), N, window_s, 1.0)
            wall = time.perf_counter() - t0
        finally:
            if load is not None:
                load.stop.set()
                load.thread.join(15)
    lat = np.array([x for r in results for x in r["lat_ns"]], np.float64) / 1e6
    p99 = float(np.percentile(lat, 99)) if len(lat) else NAN
    if load is None:
        return p99, {}
    if load.error is not None:
        raise RuntimeError(load.error)
    rest_lat = np.array(load.lat_s) * 1e3
    return p99, {
        "req_per_s": len(rest_lat) / wall,
        "rest_p99_ms": float(np.percentile(rest_lat, 99)) if len(rest_lat) else NAN,
        "rest_p50_ms": float(np.percentile(rest_lat, 50)) if len(rest_lat) else NAN,
    }


def rest_depth_rows(window_s: float) -> list[Row]:
    quiet, _ = _streams(False, window_s)
    loaded, rest = _streams(True, window_s)
    label = f"REST depth?limit=100 beside N={N} stream clients"
    return [
        row(
            f"{label}: streams' tick p99",
            loaded,
            "ms",
            "no REST load",
            quiet,
            higher=False,
            target="<= 1.2x",
            rest_req_per_s=rest["req_per_s"],
        ),
        row(f"{label}: requests/s", rest["req_per_s"], "req/s", higher=True),
        row(
            f"{label}: request p99",
            rest["rest_p99_ms"],
            "ms",
            higher=False,
            rest_p50_ms=rest["rest_p50_ms"],
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
