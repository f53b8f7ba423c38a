"""The bench's other processes: baseline servers, the load client, the raw socket probe.

`python -m tickwire.feed._bench_peers KIND ...`:
- `plain`: a trio-websocket server as a competent user would write it with our stack: the same
  market at 1 ms, one JSON message per flush encoded once, `send_message` to each client.
- `peer`: the same on asyncio with `websockets.broadcast` (the fastest well-known Python peer).
- `client URL N SECS BINARY SYMBOLS`: N picows connections that subscribe, count messages, ticks
  and bytes, and sample tick-to-receipt latency; prints "go" when its window starts, then JSON.
- `idle URL N`: N connections subscribed to one quiet symbol, held open; prints "ready".
- `physical QUICK`: send() calls/s and bytes/s over a socket pair to another process.
Servers print their URL on the first line. Clients only count; they never parse whole messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from typing import Any

import numpy as np

from tickwire.simulators import TICK_DTYPE, Market, Universe

from . import protocol as p


def _market() -> tuple[Market, np.ndarray]:
    universe = Universe.default()
    return Market(universe, seed=0, start_ns=time.time_ns()), np.array(
        universe.symbols, dtype=object
    )


def _batch_text(market: Market, names: np.ndarray, seq: int) -> str | None:
    recs = market.step(time.time_ns())
    if not len(recs):
        return None
    return json.dumps({"type": "ticks", "seq": seq, "ticks": p.tick_dicts(recs, names)})


def plain() -> None:
    import trio
    from trio_websocket import ConnectionClosed, serve_websocket

    clients: set[Any] = set()

    async def handler(request: Any) -> None:
        ws = await request.accept()
        clients.add(ws)
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed:
            pass
        finally:
            clients.discard(ws)

    async def main() -> None:
        market, names = _market()
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            print(f"ws://127.0.0.1:{server.port}/v1", flush=True)
            seq, nxt = 0, trio.current_time()
            while True:
                seq += 1
                text = _batch_text(market, names, seq)
                if text is not None:
                    for ws in list(clients):
                        try:
                            await ws.send_message(text)
                        except ConnectionClosed:
                            clients.discard(ws)
                nxt = max(nxt + 0.001, trio.current_time())
                await trio.sleep_until(nxt)

    trio.run(main)


def peer() -> None:
    import websockets

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            clients.discard(ws)

    clients: set[Any] = set()

    async def main() -> None:
        market, names = _market()
        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(f"ws://127.0.0.1:{port}/v1", flush=True)
            seq = 0
            while True:
                seq += 1
                text = _batch_text(market, names, seq)
                if text is not None:
                    websockets.broadcast(clients, text)
                await asyncio.sleep(0.001)

    asyncio.run(main())


def client(url: str, n: int, secs: float, binary: bool, symbols: str) -> None:
    from picows import WSListener, WSMsgType, ws_connect

    state = {"on": False, "msgs": 0, "ticks": 0, "bytes": 0}
    lat: list[int] = []
    sub = json.dumps({"op": "subscribe", "symbols": symbols.split(","), "snapshot": False}).encode()

    class Listener(WSListener):
        def on_ws_connected(self, transport) -> None:  # type: ignore[no-untyped-def]
            transport.send(WSMsgType.TEXT, sub)

        def on_ws_frame(self, transport, frame) -> None:  # type: ignore[no-untyped-def]
            if not state["on"]:
                return
            data = frame.get_payload_as_bytes()
            state["msgs"] += 1
            state["bytes"] += len(data)
            if frame.msg_type == WSMsgType.BINARY:
                k = (len(data) - p.HEADER_SIZE) // TICK_DTYPE.itemsize
                state["ticks"] += k
                if k and state["msgs"] % 7 == 0:
                    ts = int(
                        np.frombuffer(data, TICK_DTYPE, count=k, offset=p.HEADER_SIZE)["ts"].max()
                    )
                    lat.append(time.time_ns() - ts)
            else:
                k = data.count(b'"symbol"')
                state["ticks"] += k
                if k and state["msgs"] % 7 == 0:
                    i = data.rfind(b'"ts":')
                    if i >= 0:
                        j = data.find(b",", i)
                        lat.append(time.time_ns() - int(data[i + 5 : j]))

    async def main() -> None:
        proto = "tickwire.v1.binary" if binary else "tickwire.v1"
        conns = [
            (await ws_connect(Listener, url, extra_headers={"Sec-WebSocket-Protocol": proto}))[0]
            for _ in range(n)
        ]
        await asyncio.sleep(0.5)
        print("go", flush=True)
        state["on"] = True
        t0 = time.perf_counter()
        await asyncio.sleep(secs)
        state["on"] = False
        elapsed = time.perf_counter() - t0
        for c in conns:
            c.disconnect()
        print(
            json.dumps(
                {
                    **{k: state[k] for k in ("msgs", "ticks", "bytes")},
                    "secs": elapsed,
                    "lat": lat[:20000],
                }
            ),
            flush=True,
        )

    asyncio.run(main())


def idle(url: str, n: int) -> None:
    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):
        def on_ws_connected(self, transport) -> None:  # type: ignore[no-untyped-def]
            transport.send(WSMsgType.TEXT, b'{"op":"subscribe","symbols":["XLE"],"snapshot":false}')

    async def main() -> None:
        conns = [(await ws_connect(Listener, url))[0] for _ in range(n)]
        await asyncio.sleep(1.0)
        print("ready", flush=True)
        await asyncio.sleep(3600)
        del conns

    asyncio.run(main())


def physical(quick: bool) -> None:
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        while b.recv(1 << 20):
            pass
        os._exit(0)
    b.close()
    n = 20_000 if quick else 200_000
    small = b"x" * 300
    t0 = time.perf_counter()
    for _ in range(n):
        a.send(small)
    sends = n / (time.perf_counter() - t0)
    big = b"x" * 65536
    t0, total = time.perf_counter(), 0
    for _ in range(n // 20):
        total += a.send(big)
    rate = total / (time.perf_counter() - t0)
    a.close()
    os.waitpid(pid, 0)
    print(json.dumps({"sends_per_s": sends, "bytes_per_s": rate}))


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    if kind == "plain":
        plain()
    elif kind == "peer":
        peer()
    elif kind == "client":
        client(rest[0], int(rest[1]), float(rest[2]), rest[3] == "1", rest[4])
    elif kind == "idle":
        idle(rest[0], int(rest[1]))
    elif kind == "physical":
        physical(rest[0] == "1")
