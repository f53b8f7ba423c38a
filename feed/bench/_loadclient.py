"""The load client process: many picows connections that only count and time-stamp samples.

`python -m tickwire.feed.bench._loadclient MODE URL ...`, driven through stdin/stdout lines (the
clients connect, print `connected` and subscribe on the next stdin line):
- `count URL N FIRST BINARY SUBS [--symbols K] [--warmup S] [--mode latest]`: N connections
  (global numbers FIRST..FIRST+N-1) subscribe to `*` (SUBS `*`) or each to its own 10 symbols
  (SUBS `pick10`), every update or, with `--mode latest`, the latest state per symbol,
  print `ready`, count from `go` to `stop` on stdin: data messages, ticks, payload bytes, own
  CPU, and tick-to-receipt latency (receipt `time.time_ns()` minus the tick's `ts`) for every
  tick of a sample of messages; then print one JSON line. With `--book`, each also keeps its
  symbols' order books (`"book": true`), and level updates are counted apart (`levels`).
- `binance URL N FIRST [--symbols K] [--warmup S] [--kinds a,b]`: as `count` with SUBS `pick10`,
  but each connection opens `/binance/stream?streams=` with its same 10 symbols' `@trade` and
  `@bookTicker` (or the stream kinds `--kinds` names, e.g. `depth@100ms`), at the base URL (no
  `/v1`); every message is one venue event (`ticks` = `msgs`); `levels` counts the depth levels.
- `idle URL N SYMBOL [--warmup S]`: N connections subscribed to one symbol, held until stdin closes.
- `stalled URL [SYMBOL]`: one raw-socket connection that subscribes to SYMBOL (default `*`) and
  then never reads again; stdin lines `+S` and `-S` subscribe to and unsubscribe from S too.
- `storm URL N [--symbols K]`: on `go`, N connections opened all at once (a reconnect storm), each
  subscribing to `*` as soon as it is open; prints each one's handshake time and time until its
  first data message, both from `go`, as one JSON line once all are live (or after a minute);
  holds the connections until stdin closes.
The client never parses whole messages: it counts `"symbol"` keys (JSON) or the record count
(binary), so it costs the server's competitor for the CPU as little as it can.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import random
import re
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

HEADER_SIZE = 16  # tickwire.feed.protocol.HEADER_SIZE; kept here so clients import no server code
RECORD_SIZE = 64  # TICK_DTYPE.itemsize; `ts` is the record's first little-endian int64
HANDSHAKE_TIMEOUT_S = 60.0  # a saturated baseline answers slowly; the bench waits for it
WARMUP_LIMIT_S = 10.0  # the longest wait for every connection's first data message
MAX_SAMPLES = 20_000  # latency samples returned per process
_TS = re.compile(rb'"ts": ?(\d+)')  # json.dumps writes a space after ':'
_SYMBOL = b'"symbol"'
_BOOK = b'{"type":"book'  # a `book` or `book_snapshot` message (orjson writes no spaces)
_CHANGES = (b'["bid",', b'["ask",')  # one per level update in a JSON `book` message


@functools.cache
def _names(k: int | None) -> list[str]:
    """The server's symbols: `tickwire serve --symbols K` (seed 0) or the default universe."""
    from tickwire.simulators import Universe

    return list((Universe.synthetic(k) if k else Universe.default()).symbols)


def _symbols_for(conn: int, k: int | None) -> list[str]:
    """Connection `conn`'s own 10 symbols (a different set for each connection)."""
    names = _names(k)
    return random.Random(conn).sample(names, min(10, len(names)))


def _subscribe(symbols: list[str], mode: str = "all", book: bool = False) -> bytes:
    req: dict[str, Any] = {"op": "subscribe", "symbols": symbols, "snapshot": False}
    if mode != "all":
        req["mode"] = mode
    if book:
        req["book"] = True
    return json.dumps(req).encode()


def _symbols_of(subs: str, conn: int, k: int | None) -> list[str]:
    return ["*"] if subs == "*" else _symbols_for(conn, k)


def _book_levels(data: bytes, binary: bool) -> int | None:
    """The level updates in an order book message (None: not one): a binary frame's record
    count (types 3 and 4), or a JSON message's changes."""
    if not ((binary and data[1] in (3, 4)) or (not binary and data.startswith(_BOOK))):
        return None
    levels = int.from_bytes(data[4:8], "little") if binary else 0
    return levels or sum(data.count(c) for c in _CHANGES)


def _count_book(state: dict[str, Any], levels: int, size: int) -> None:
    """An order book message: its level updates, counted apart from ticks."""
    state["levels"] += levels
    state["book_msgs"] += 1
    state["bytes"] += size


async def _stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def _connect_all(listener: Any, url: str, n: int, proto: str) -> list[Any]:
    """Open n connections, say `connected`, and subscribe them all on the bench's `subscribe`.

    Subscribing only once every client process is connected matters: a server that cannot keep
    up (the naive baseline) would otherwise starve the handshakes still to come."""
    from picows import WSMsgType, ws_connect

    headers = {"Sec-WebSocket-Protocol": proto}
    out: list[Any] = []
    for start in range(0, n, 50):  # 50 handshakes at a time: a burst, not a SYN flood
        batch = [
            ws_connect(
                lambda i=i: listener(i),
                url,
                extra_headers=headers,
                websocket_handshake_timeout=HANDSHAKE_TIMEOUT_S,
            )
            for i in range(start, min(n, start + 50))
        ]
        out += await asyncio.gather(*batch)
    print("connected", flush=True)
    await _stdin_line()
    for transport, lis in out:
        transport.send(WSMsgType.TEXT, lis.sub)
    return [t for t, _ in out]


def count(
    url: str,
    n: int,
    first: int,
    binary: bool,
    subs: str,
    k: int | None,
    warmup_s: float,
    mode: str = "all",
    book: bool = False,
) -> None:
    from picows import WSListener, WSMsgType

    state = {"on": False, "msgs": 0, "ticks": 0, "bytes": 0, "levels": 0, "book_msgs": 0}
    lat: list[int] = []
    waiting: set[Any] = set()  # listeners that have not had a data message yet
    every = max(1, n // 8)  # sample every `every`-th message per connection: ~8 samplers' worth

    class Listener(WSListener):
        def __init__(self, i: int) -> None:
            super().__init__()
            self.sub = _subscribe(_symbols_of(subs, first + i, k), mode, book)
            self.n = i  # stagger the sampled messages across connections
            waiting.add(self)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if not state["on"] and self in waiting:
                data = frame.get_payload_as_bytes()
                if frame.msg_type == WSMsgType.BINARY or _SYMBOL in data:
                    waiting.discard(self)  # its data flows: the window may start
                return
            if not state["on"]:
                return
            now = time.time_ns()
            data = frame.get_payload_as_bytes()
            binary = frame.msg_type == WSMsgType.BINARY
            if (levels := _book_levels(data, binary)) is not None:
                _count_book(state, levels, len(data))  # order books: counted apart
                return
            ticks = (len(data) - HEADER_SIZE) // RECORD_SIZE if binary else data.count(_SYMBOL)
            if not ticks:  # welcome, ack, heartbeat...: not data
                return
            state["msgs"] += 1
            state["ticks"] += ticks
            state["bytes"] += len(data)
            self.n += 1
            if self.n % every:
                return
            if frame.msg_type == WSMsgType.BINARY:
                ts = np.frombuffer(data, "<i8", offset=HEADER_SIZE)[::8]
                lat.extend((now - ts).tolist())
            else:
                lat.extend(now - int(t) for t in _TS.findall(data))

    async def main() -> None:
        proto = "tickwire.v1.binary" if binary else "tickwire.v1"
        conns = await _connect_all(Listener, url, n, proto)
        await asyncio.sleep(warmup_s)  # subscriptions acknowledged, first messages through
        # A loaded machine can make a server late: the window starts once every connection has
        # had data (or after a bounded wait), so a slow start is not measured as zero delivery.
        deadline = time.perf_counter() + WARMUP_LIMIT_S
        while waiting and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)  # polling this process's own flags
        print("ready", flush=True)
        await _stdin_line()
        cpu0, t0 = time.process_time(), time.perf_counter()
        state["on"] = True
        await _stdin_line()
        state["on"] = False
        secs = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        for c in conns:
            c.disconnect()
        sample = lat if len(lat) <= MAX_SAMPLES else random.Random(0).sample(lat, MAX_SAMPLES)
        result: dict[str, object] = {k: v for k, v in state.items() if k != "on"}
        result.update(secs=secs, cpu_s=cpu, lat_ns=sample, lat_total=len(lat))
        print(json.dumps(result), flush=True)

    asyncio.run(main())


def binance(url: str, n: int, first: int, k: int | None, warmup_s: float, kinds: str) -> None:
    """N Binance combined-stream connections, each on its `count`-mode 10 symbols."""
    from picows import WSListener, ws_connect

    state = {"on": False, "msgs": 0, "bytes": 0, "levels": 0}

    class Listener(WSListener):
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if state["on"]:
                data = frame.get_payload_as_bytes()
                state["msgs"] += 1
                state["bytes"] += len(data)
                state["levels"] += data.count(b'["')  # a depth level is ["price","qty"]

    def stream_url(i: int) -> str:
        # Binance names: the symbol's ASCII letters and digits, lower case (BRK.B: brkb)
        names = [
            "".join(c for c in s if c.isascii() and c.isalnum()).lower()
            for s in _symbols_for(first + i, k)
        ]
        streams = "/".join(f"{s}@{kind}" for s in names for kind in kinds.split(","))
        return f"{url.removesuffix('/v1')}/binance/stream?streams={streams}"

    async def main() -> None:
        conns = []
        for start in range(0, n, 50):
            batch = [
                ws_connect(Listener, stream_url(i), websocket_handshake_timeout=HANDSHAKE_TIMEOUT_S)
                for i in range(start, min(n, start + 50))
            ]
            conns += [t for t, _ in await asyncio.gather(*batch)]
        print("connected", flush=True)
        await _stdin_line()  # subscribed by the URL already
        await asyncio.sleep(warmup_s)
        print("ready", flush=True)
        await _stdin_line()
        cpu0, t0 = time.process_time(), time.perf_counter()
        state["on"] = True
        await _stdin_line()
        state["on"] = False
        secs = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        for c in conns:
            c.disconnect()
        result = {k: state[k] for k in ("msgs", "bytes", "levels")} | {"ticks": state["msgs"]}
        print(json.dumps({**result, "secs": secs, "cpu_s": cpu, "lat_ns": []}), flush=True)

    asyncio.run(main())


def idle(url: str, n: int, symbol: str, warmup_s: float) -> None:
    from picows import WSListener

    sub = _subscribe([symbol])

    class Listener(WSListener):
        def __init__(self, i: int) -> None:
            super().__init__()
            self.sub = sub

    async def main() -> None:
        conns = await _connect_all(Listener, url, n, "tickwire.v1")
        await asyncio.sleep(warmup_s)  # every subscription processed before the RSS is read
        print("ready", flush=True)
        await _stdin_line()
        for c in conns:
            c.disconnect()

    asyncio.run(main())


def stalled(url: str, first: str = "*") -> None:
    """A raw client: handshake, subscribe to `first`, then never read; a stdin line `+S`
    subscribes to S as well, `-S` unsubscribes (each answered `ready`). A tiny receive buffer
    makes the kernel's share small, so what piles up is in the server's process."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: tickwire.v1\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the headers is read
        if not chunk:
            raise SystemExit("the server closed the stalled client's handshake")
        head += chunk
    line = f"+{first}"
    while line.strip():  # until stdin closes
        symbol = line.strip()[1:]
        if line.startswith("+"):
            request = {"op": "subscribe", "symbols": [symbol], "snapshot": False}
        else:
            request = {"op": "unsubscribe", "symbols": [symbol]}
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(json.dumps(request).encode()))
        sock.sendall(bytes([0x81, 0x80 | len(masked)]) + mask + masked)
        print("ready", flush=True)
        line = sys.stdin.readline()
    sock.close()


def storm(url: str, n: int) -> None:
    from picows import WSListener, WSMsgType, ws_connect

    sub = _subscribe(["*"])
    t0 = 0.0
    live: list[float] = []

    class Listener(WSListener):
        seen = False

        def on_ws_connected(self, transport: Any) -> None:
            transport.send(WSMsgType.TEXT, sub)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if self.seen or frame.msg_type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            data = frame.get_payload_as_bytes()
            if frame.msg_type == WSMsgType.BINARY or _SYMBOL in data:
                self.seen = True
                live.append((time.perf_counter() - t0) * 1000)

    async def one() -> tuple[Any, float]:
        transport, _ = await ws_connect(
            Listener,
            url,
            extra_headers={"Sec-WebSocket-Protocol": "tickwire.v1"},
            websocket_handshake_timeout=HANDSHAKE_TIMEOUT_S,
        )
        return transport, (time.perf_counter() - t0) * 1000

    async def main() -> None:
        nonlocal t0
        print("connected", flush=True)  # nothing to open before the storm itself
        await _stdin_line()
        print("ready", flush=True)
        await _stdin_line()
        t0 = time.perf_counter()
        done = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        opened = [d for d in done if not isinstance(d, BaseException)]
        deadline = time.perf_counter() + HANDSHAKE_TIMEOUT_S
        while len(live) < len(opened) and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)  # polling our own counter, not synchronising with a peer
        result = {
            "handshake_ms": [ms for _, ms in opened],
            "live_ms": live,
            "failed": n - len(opened),
        }
        print(json.dumps(result), flush=True)
        await _stdin_line()  # held open until the bench closes stdin
        for transport, _ in opened:
            transport.disconnect()

    asyncio.run(main())


def main(argv: list[str]) -> None:
    mode, url, *rest = argv
    k = int(rest[rest.index("--symbols") + 1]) if "--symbols" in rest else None
    warmup_s = float(rest[rest.index("--warmup") + 1]) if "--warmup" in rest else 0.5
    sub_mode = rest[rest.index("--mode") + 1] if "--mode" in rest else "all"
    try:
        if mode == "count":
            args = (rest[2] == "1", rest[3], k, warmup_s, sub_mode, "--book" in rest)
            count(url, int(rest[0]), int(rest[1]), *args)
        elif mode == "binance":
            kinds = rest[rest.index("--kinds") + 1] if "--kinds" in rest else "trade,bookTicker"
            binance(url, int(rest[0]), int(rest[1]), k, warmup_s, kinds)
        elif mode == "idle":
            idle(url, int(rest[0]), rest[1], warmup_s)
        elif mode == "stalled":
            stalled(url, *rest[:1])
        elif mode == "storm":
            storm(url, int(rest[0]))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
