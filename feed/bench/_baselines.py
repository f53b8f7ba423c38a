"""Baseline servers of the fan-out and memory rows, each run as its own process.

`python -m tickwire.feed.bench._baselines KIND [--symbols N] [--activity X]` serves, on a free
port, the SAME market as `tickwire serve` with those flags (the default universe or N synthetic
symbols, seed 0, event time anchored to the wall clock, stepped every 1 ms) with the same JSON
tick objects (`protocol.tick_dicts`), honours `{"op": "subscribe", "symbols": [...]}` (or
`["*"]`), and prints its URL on one line:
- `naive`: websockets (asyncio), one JSON message per tick per client, stdlib json: what a first
  version usually is;
- `plain`: trio-websocket, one message per flush and client, `send_message` per client, each tick
  encoded once with orjson and joined per client: what a competent user writes with our own stack;
- `peer`: websockets (asyncio) `broadcast` of one batch per flush to each group of clients with the
  same subscription (one group for `*`): the fastest well-known Python peer.
They speak JSON only and send no welcome; the load client ignores what is not data.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import numpy as np
import orjson

from tickwire.feed import protocol as p
from tickwire.simulators import Market, Universe

CADENCE_S = 0.001

Subs = frozenset[str] | None  # None: everything ("*")


class _Feed:
    """The market the baselines serve, identical to `tickwire serve`'s with the same flags."""

    def __init__(self, n_symbols: int | None, activity: float) -> None:
        universe = Universe.synthetic(n_symbols) if n_symbols else Universe.default()
        self.market = Market(universe, seed=0, start_ns=time.time_ns(), activity=activity)
        self.names = np.array(universe.symbols, dtype=object)
        self.seq = 0

    def dicts(self) -> list[dict[str, Any]]:
        dicts: list[dict[str, Any]] = p.tick_dicts(self.market.step(time.time_ns()), self.names)
        return dicts

    def text(self, fragments: list[tuple[str, bytes]], subs: Subs) -> bytes | None:
        """One `ticks` message of the fragments `subs` wants, or None when there are none."""
        frags = [f for s, f in fragments if subs is None or s in subs]
        if not frags:
            return None
        self.seq += 1
        body: bytes = p.ticks_text("ticks", self.seq, b"[" + b",".join(frags) + b"]")
        return body


def _parse_subs(message: str | bytes) -> Subs | bool:
    """The subscription a client asked for, or False for anything else."""
    try:
        req = json.loads(message)
    except ValueError:
        return False
    if not isinstance(req, dict) or req.get("op") != "subscribe":
        return False
    symbols = req.get("symbols") or []
    return None if "*" in symbols else frozenset(symbols)


def _fragments(dicts: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(d["symbol"], orjson.dumps(d)) for d in dicts]


async def _tick_clock() -> Any:
    """Yield once per cadence, like tickwire's generator: skip ahead rather than queue."""
    loop = asyncio.get_running_loop()
    nxt = loop.time()
    while True:
        yield
        nxt += CADENCE_S
        now = loop.time()
        if now > nxt + CADENCE_S:
            nxt = now
        await asyncio.sleep(max(0.0, nxt - now))


# --------------------------------------------------------------------------- websockets (asyncio)


def _serve_websockets(kind: str, n_symbols: int | None, activity: float) -> None:
    from websockets.asyncio.server import broadcast, serve
    from websockets.exceptions import ConnectionClosed

    clients: dict[Any, Subs] = {}

    async def handler(ws: Any) -> None:
        try:
            async for message in ws:
                subs = _parse_subs(message)
                if subs is not False:
                    clients[ws] = subs  # type: ignore[assignment]
        except ConnectionClosed:
            pass
        finally:
            clients.pop(ws, None)

    async def naive(feed: _Feed) -> None:
        async for _ in _tick_clock():
            for d in feed.dicts():
                for ws, subs in list(clients.items()):
                    if subs is None or d["symbol"] in subs:
                        feed.seq += 1
                        msg = json.dumps({"type": "ticks", "seq": feed.seq, "ticks": [d]})
                        try:
                            await ws.send(msg)
                        except ConnectionClosed:
                            clients.pop(ws, None)

    async def peer(feed: _Feed) -> None:
        async for _ in _tick_clock():
            dicts = feed.dicts()
            if not dicts:
                continue
            frags = _fragments(dicts)
            groups: dict[Subs, list[Any]] = {}
            for ws, subs in clients.items():
                groups.setdefault(subs, []).append(ws)
            for subs, members in groups.items():
                text = feed.text(frags, subs)
                if text is not None:
                    broadcast(members, text.decode())

    async def main() -> None:
        feed = _Feed(n_symbols, activity)
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(f"ws://127.0.0.1:{port}/v1", flush=True)
            await (naive(feed) if kind == "naive" else peer(feed))

    asyncio.run(main())


# --------------------------------------------------------------------------- trio-websocket


def _serve_plain(n_symbols: int | None, activity: float) -> None:
    import trio
    from trio_websocket import ConnectionClosed, serve_websocket

    clients: dict[Any, Subs] = {}

    async def handler(request: Any) -> None:
        ws = await request.accept()
        try:
            while True:
                subs = _parse_subs(await ws.get_message())
                if subs is not False:
                    clients[ws] = subs  # type: ignore[assignment]
        except ConnectionClosed:
            pass
        finally:
            clients.pop(ws, None)

    async def main() -> None:
        feed = _Feed(n_symbols, activity)
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            print(f"ws://127.0.0.1:{server.port}/v1", flush=True)
            nxt = trio.current_time()
            while True:
                dicts = feed.dicts()
                if dicts:
                    frags = _fragments(dicts)
                    shared = feed.text(frags, None)  # encoded once for every '*' client
                    for ws, subs in list(clients.items()):
                        text = shared if subs is None else feed.text(frags, subs)
                        if text is None:
                            continue
                        try:
                            await ws.send_message(text.decode())
                        except ConnectionClosed:
                            clients.pop(ws, None)
                nxt += CADENCE_S
                now = trio.current_time()
                if now > nxt + CADENCE_S:
                    nxt = now
                await trio.sleep_until(nxt)

    trio.run(main)


def main(argv: list[str]) -> None:
    kind = argv[0]
    n_symbols = int(argv[argv.index("--symbols") + 1]) if "--symbols" in argv else None
    activity = float(argv[argv.index("--activity") + 1]) if "--activity" in argv else 1.0
    try:
        if kind == "plain":
            _serve_plain(n_symbols, activity)
        elif kind in ("naive", "peer"):
            _serve_websockets(kind, n_symbols, activity)
        else:
            raise SystemExit(f"unknown baseline {kind!r}: naive, plain or peer")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
