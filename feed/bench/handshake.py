"""Handshake rows: how long a new client waits for its 101, with the server idle and under load.

Issue 9: under load, handshakes waited behind data fan-out (30-95 ms at 300 clients on `*`). Each
server (tickwire serve, then plain trio-websocket) serves the default universe; the bench opens
handshakes one after another from its own process (stdlib sockets: connect, upgrade request,
time to the end of the 101's headers, then a close frame), first with no other client, then while
a load-client process streams `*` to N clients (300; 20 with --quick). p50 and p99 per server.
Imports no trio: the servers and the load clients are other processes.

The HTTP front's own cost (issue 12): the same handshake answered by the server's `HttpFront`
(h11 and the upgrade checks, which let the port serve the page and /metrics too) and by wsproto's
server handshake (what trio-websocket ran before), in one process on the same loopback sockets,
interleaved; and the CPU of each without sockets.
"""

from __future__ import annotations

import base64
import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
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
    advance("handshakes: HTTP front vs wsproto")
    return rows + front_rows(quick)


# ------------------------------------------------------------------ the HTTP front's own cost

Answer = Callable[[bytes], "bytes | None"]  # request bytes in; the 101 out (None: read more)
_SUBPROTOCOLS = ("tickwire.v1.binary", "tickwire.v1")


@functools.cache
def _policy() -> Any:
    """`tickwire serve`'s default policy, with its page and health routes."""
    from tickwire.feed.server.metrics import Metrics, livez
    from tickwire.feed.server.routes import http_routes
    from tickwire.feed.server.server import ServerConfig

    return replace(ServerConfig().policy(), routes=http_routes(Metrics(dict), livez))


def front_answer() -> Answer:
    """tickwire's handshake: `tickwire serve`'s HTTP front decides and writes the 101."""
    from tickwire.feed.ws.http import Accept, HttpFront

    front = HttpFront(_policy())

    def answer(data: bytes) -> bytes | None:
        decision = front.receive_data(data)
        if decision is None:
            return None
        if not isinstance(decision, Accept):
            raise RuntimeError(f"the HTTP front refused the handshake: {decision.reason}")
        return decision.response

    return answer


def wsproto_answer() -> Answer:
    """The baseline: wsproto's server handshake, as trio-websocket runs it, same subprotocol."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    ws = WSConnection(ConnectionType.SERVER)

    def answer(data: bytes) -> bytes | None:
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Request):
                chosen = next((s for s in event.subprotocols if s in _SUBPROTOCOLS), None)
                return ws.send(AcceptConnection(subprotocol=chosen))
        return None

    return answer


@contextmanager
def handshake_server(make: Callable[[], Answer]) -> Iterator[str]:
    """A blocking one-connection-at-a-time server thread on 127.0.0.1 that only answers the
    upgrade (then waits for the client's close); yields its ws:// URL."""
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(30)
                answer = make()
                while data := conn.recv(4096):
                    if (out := answer(data)) is not None:
                        conn.sendall(out)
                        conn.recv(64)  # the client's close frame, or its EOF
                        break

    thread = threading.Thread(target=serve, name=f"handshake-{make.__name__}", daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{lsock.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(timeout=5)
        lsock.close()


def _request() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /v1 HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: tickwire.v1.binary, tickwire.v1\r\n\r\n"
    ).encode()


def cpu_us(make: Callable[[], Answer], n: int) -> float:
    """CPU per handshake without sockets: the best of 5 runs of `n`, in microseconds."""
    request = _request()
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            if make()(request) is None:
                raise RuntimeError(f"{make.__name__} did not answer a whole request")
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


def front_rows(quick: bool) -> list[Row]:
    """The HTTP front vs wsproto: socket handshake p50/p99 (interleaved) and CPU each."""
    n = 100 if quick else 1000
    times: dict[str, list[float]] = {"front": [], "wsproto": []}
    with handshake_server(front_answer) as front, handshake_server(wsproto_answer) as plain:
        for _ in range(n):
            times["front"].append(handshake_ms(front, welcome=False))
            times["wsproto"].append(handshake_ms(plain, welcome=False))
    p = {k: np.percentile(np.array(v), [50, 99]) for k, v in times.items()}
    label = "handshake through the HTTP front (h11 + checks), loopback"
    rows = [
        row(
            f"{label} {pct}",
            float(p["front"][i]),
            "ms",
            "wsproto handshake",
            float(p["wsproto"][i]),
            higher=False,
            target="<= 1.1x" if pct == "p50" else "",
        )
        for i, pct in enumerate(("p50", "p99"))
    ]
    cpu_n = 500 if quick else 5000
    rows.append(
        row(
            "handshake CPU through the HTTP front, no socket",
            cpu_us(front_answer, cpu_n),
            "us",
            "wsproto handshake",
            cpu_us(wsproto_answer, cpu_n),
            higher=False,
            target="<= 1.1x",
        )
    )
    return rows
