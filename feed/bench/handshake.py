"""Handshake rows: how long a new client waits for its 101, with the server idle and under load.

Issue 9: under load, handshakes waited behind data fan-out (30-95 ms at 300 clients on `*`). Each
server (tickwire serve, then plain trio-websocket) serves the default universe; the bench opens
handshakes one after another from its own process (stdlib sockets: connect, upgrade request,
time to the end of the 101's headers, then a close frame), first with no other client, then while
a load-client process streams `*` to N clients (300; 20 with --quick). p50 and p99 per server.
Imports no trio: the servers and the load clients are other processes.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import numpy as np

from . import _procs
from ._table import Row, row

KINDS = ("tickwire", "plain")
_CLOSE_1000 = bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])  # masked with a zero key: 1000


def streaming_n(quick: bool) -> int:
    return 20 if quick else 300  # issue 9: "with 300 clients on '*'"


def handshakes_n(quick: bool) -> int:
    return 20 if quick else 200  # enough for a p99 that is not the maximum of a handful


def handshake_ms(url: str, welcome: bool) -> float:
    """One WebSocket opening handshake: connect to the end of the 101 response, in ms. With
    `welcome`, the server's first frame is read before the close (tickwire sends one)."""
    parts = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: tickwire.v1\r\n\r\n"
    ).encode()
    t0 = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"{url} closed the handshake: {head[:80]!r}")
            head += chunk
        took = (time.perf_counter() - t0) * 1000
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"{url} refused the handshake: {head.splitlines()[0]!r}")
        if welcome and head.endswith(b"\r\n\r\n"):
            sock.recv(4096)  # a close before the welcome killed the server before issue 9
        sock.sendall(_CLOSE_1000)
    return took


def _percentiles(url: str, n: int, welcome: bool) -> tuple[float, float]:
    times = np.array([handshake_ms(url, welcome) for _ in range(n)])
    p50, p99 = np.percentile(times, [50, 99])
    return float(p50), float(p99)


def _measure(kind: str, quick: bool) -> dict[str, tuple[float, float]]:
    n, load_n = handshakes_n(quick), streaming_n(quick)
    welcome = kind == "tickwire"
    with _procs.server(kind) as (_server, url):
        _procs.settle(0.3 if quick else 1.0)
        out = {"idle": _percentiles(url, n, welcome)}
        client = _procs.spawn(
            "tickwire.feed.bench._loadclient",
            *("count", url, str(load_n), "0", "0", "*", "--warmup", "0.5"),
            stdin=True,
        )
        try:
            for word, reply in (("", "connected"), ("subscribe", "ready"), ("go", "")):
                if word:
                    assert client.stdin is not None
                    client.stdin.write(word + "\n")
                    client.stdin.flush()
                if reply and (line := _procs.readline(client, 30 + load_n * 0.1)) != reply:
                    raise RuntimeError(f"load client said {line!r}, not {reply!r}")
            out["loaded"] = _percentiles(url, n, welcome)
        finally:
            _procs.stop(client)
    return out


def handshake_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
    res = {}
    for kind in KINDS:
        advance(f"handshakes: {kind}")
        res[kind] = _measure(kind, quick)
    load = f"{streaming_n(quick)} clients on '*'"
    rows = []
    for state, label in (("idle", "no other client"), ("loaded", load)):
        for i, pct in enumerate(("p50", "p99")):
            rows.append(
                row(
                    f"handshake {pct}, {label}",
                    res["tickwire"][state][i],
                    "ms",
                    "plain",
                    res["plain"][state][i],
                    higher=False,
                    target="< 50 ms" if state == "loaded" and pct == "p99" else "",
                )
            )
    return rows
