"""Exchange-dialect rows: N Binance clients vs N `/v1` JSON clients on the same symbols.

Each side runs against its own fresh `tickwire serve` process in the same bench run (the default
universe, each connection on its own 10 symbols, the same 10 on both sides: `_loadclient`'s
`pick10` choice): `/v1` JSON subscribes to them, Binance opens a combined stream of their
`@trade` and `@bookTicker`. Server CPU (/proc, over the window) per delivered message is the
issue's figure (goal: within 1.5x of `/v1` JSON). A venue message carries one event where a `/v1`
message carries every tick of a flush, so CPU per delivered update (a tick, or an event) is shown
too. Imports no trio: everything runs in other processes.

REST over HTTP keep-alive: one client (the stdlib's `http.client`, in the bench's process) asks a
fresh `tickwire serve` for Binance's `ticker/price` as fast as it answers, over one kept-alive
connection, then over a new connection per request (what every REST call cost before).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ._procs import server
from ._table import NAN, Row, row
from .fanout import run_load

_REST_PATH = "/binance/api/v3/ticker/price?symbol=AAPL"
NO_WEIGHT_LIMIT = ("--binance-weight-per-min", str(10**9))  # measure the rate, not the 429s


def v1_clients(*extra: str) -> Callable[[int, int], tuple[str, ...]]:
    """Load-client arguments: `/v1` JSON connections, each on its own 10 symbols (`pick10`)."""
    return lambda k, first: ("count", str(k), str(first), "0", "pick10", *extra)


def binance_clients(*extra: str) -> Callable[[int, int], tuple[str, ...]]:
    """Load-client arguments: Binance combined streams of the same 10 symbols per connection."""
    return lambda k, first: ("binance", str(k), str(first), *extra)


def served(
    server_args: tuple[str, ...],
    client_args: Callable[[int, int], tuple[str, ...]],
    n: int,
    window_s: float,
    warmup_s: float,
    msgs: str = "msgs",
    units: str = "ticks",
) -> dict[str, float]:
    """N load clients over 1-2 load-client processes against a fresh `tickwire serve
    *server_args`: server CPU per delivered message (the results' `msgs` count) and per update
    (their `units` count: ticks, or level updates), the rates over the window and server CPU %.
    `client_msgs_per_s` divides by the longest client window rather than the bench's."""
    results, cpu, wall = run_load("tickwire", server_args, client_args, n, window_s, warmup_s)
    n_msgs = sum(int(r.get(msgs, 0)) for r in results)
    n_units = sum(int(r.get(units, 0)) for r in results)
    return {
        "cpu_us_msg": cpu / n_msgs * 1e6 if n_msgs else NAN,
        "cpu_us_unit": cpu / n_units * 1e6 if n_units else NAN,
        "msgs_per_s": n_msgs / wall,
        "units_per_s": n_units / wall,
        "client_msgs_per_s": n_msgs / max(r["secs"] for r in results),
        "server_cpu_pct": cpu / wall * 100,
    }


def cpu_per_msg_row(
    label: str, venue: dict[str, float], base: str, v1: dict[str, float], **extra: Any
) -> Row:
    """The issue's figure: a venue's server CPU per delivered message beside `/v1`'s."""
    return row(
        f"{label}: server CPU/msg",
        venue["cpu_us_msg"],
        "us",
        base,
        v1["cpu_us_msg"],
        higher=False,
        target="<= 1.5x",
        **extra,
        server_cpu_pct=venue["server_cpu_pct"],
        baseline_cpu_pct=v1["server_cpu_pct"],
    )


def rest_rate(host: str, port: int, window_s: float, keep_alive: bool) -> float:
    """REST requests answered per second by one client over `window_s`."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {} if keep_alive else {"Connection": "close"}
    done, start = 0, time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < window_s:
            conn.request("GET", _REST_PATH, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"GET {_REST_PATH}: HTTP {answer.status}")
            done += 1
            if not keep_alive:
                conn.close()  # the next request opens a new connection
    finally:
        conn.close()
    return done / elapsed


def rest_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
    window_s = 0.3 if quick else 3.0
    label = "venue REST GET Binance ticker/price, 1 client"
    advance(f"{label}: keep-alive vs a connection per request")
    with server("tickwire", *NO_WEIGHT_LIMIT) as (_, url):
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        rest_rate(host, port, window_s / 3, True)  # warm-up: the history fills, code is hot
        kept = rest_rate(host, port, window_s, True)
        fresh = rest_rate(host, port, window_s, False)
    base = "a new connection per request"
    return [row(f"{label}: requests/s", kept, "req/s", base, fresh, higher=True)]


def venue_rows(quick: bool, full: bool, advance: Callable[[str], None]) -> list[Row]:
    n = 2 if quick else 100
    window_s, warmup_s = (0.4, 0.2) if quick else (3.0, 0.5)
    label = f"venue Binance N={n} 10 sym each"
    advance(f"{label}: /v1 JSON")
    v1 = served((), v1_clients(), n, window_s, warmup_s)
    advance(f"{label}: binance")
    bn = served((), binance_clients(), n, window_s, warmup_s)
    base = "/v1 JSON"
    return [
        cpu_per_msg_row(label, bn, base, v1),
        row(
            f"{label}: msgs/s",
            bn["client_msgs_per_s"],
            "m/s",
            base,
            v1["client_msgs_per_s"],
            higher=True,
        ),
        row(
            f"{label}: server CPU/update",
            bn["cpu_us_unit"],
            "us",
            base + " (per tick)",
            v1["cpu_us_unit"],
            higher=False,
        ),
        *rest_rows(quick, advance),
    ]
