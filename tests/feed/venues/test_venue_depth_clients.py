"""Binance's depth through clients we did not write, unmodified, pointed here by their URLs alone:
python-binance's `DepthCacheManager`, ccxt.pro's `watch_order_book` and cryptofeed's `L2_BOOK`.

Each keeps a local book from the diff stream and the REST snapshot by its own reading of
Binance's rules; the truth is the server's book, as its `depth20@100ms` stream shows it (read by
a recorder beside the client): after each update the client's best 20 levels a side must equal
the server's partial book of the same `lastUpdateId`. Every client runs its own asyncio loop in
a worker thread; a test skips, saying why, when its client is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from websockets.asyncio.client import connect

from tickwire.feed.server.server import ServerConfig
from tickwire.simulators import Universe

from .conftest import CADENCE_MS, VenueServer, start

DEADLINE_S = 60
UPDATES = 40  # consecutive book updates each client must get right (4 s at 100 ms)
Side = list[list[float]]


class Truth:
    """The server's books as its streams show them: diff event time -> u, and each partial
    book by its lastUpdateId."""

    def __init__(self) -> None:
        self.u_at: dict[int, int] = {}
        self.book: dict[int, tuple[Side, Side]] = {}

    async def record(self, url: str, stop: asyncio.Event, ctx: ssl.SSLContext | None) -> None:
        streams = "btcusd@depth@100ms/btcusd@depth20@100ms"
        async with connect(f"{url}/binance/stream?streams={streams}", ssl=ctx) as ws:
            while not stop.is_set():
                msg = json.loads(await ws.recv())
                data = msg["data"]
                if msg["stream"].endswith("depth20@100ms"):
                    self.book[data["lastUpdateId"]] = (_floats(data["bids"]), _floats(data["asks"]))
                else:
                    self.u_at[data["E"]] = data["u"]

    def check(self, seen: list[tuple[int, Side, Side]]) -> int:
        """How many of the client's books (u, bids, asks) were compared; asserts they match."""
        compared = 0
        for u, bids, asks in seen:
            truth = self.book.get(u)
            if truth is None:
                continue
            assert (bids[: len(truth[0])], asks[: len(truth[1])]) == truth, f"book at {u}"
            compared += 1
        return compared


def _floats(side: Any) -> Side:
    return [[float(p), float(q)] for p, q in side]


async def _server(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, certfile: str | None = None
) -> VenueServer:
    config = ServerConfig(
        port=0,
        cadence_ms=CADENCE_MS,
        universe=Universe.crypto_pairs(),
        session="24h",
        book_depth=20,
        certfile=certfile,
    )
    return await start(nursery, caplog, config)


async def _in_thread(fn: Any) -> Any:
    with trio.fail_after(DEADLINE_S + 15):
        return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


def _run(main: Any, truth: Truth, ws_base: str, ctx: ssl.SSLContext | None = None) -> Any:
    """`main()` in a fresh asyncio loop beside the truth's recorder (started first)."""

    async def both() -> Any:
        stop = asyncio.Event()
        recorder = asyncio.create_task(truth.record(ws_base, stop, ctx))
        await asyncio.sleep(0)
        try:
            return await asyncio.wait_for(main(), DEADLINE_S)
        finally:
            stop.set()
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)

    return asyncio.run(both())


async def test_python_binance_depth_cache_manager_keeps_the_servers_book(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    binance = pytest.importorskip("binance", reason="python-binance is not installed")
    venue = await _server(nursery, caplog)
    base = venue.url("")
    truth = Truth()

    class Local(binance.AsyncClient):  # type: ignore[misc, name-defined]
        API_URL = base.replace("ws://", "http://") + "/binance/api"

    async def main() -> list[tuple[int, int, Side, Side]]:
        client = await Local.create()
        manager = binance.BinanceSocketManager(client)
        manager.STREAM_URL = base + "/binance/"
        seen = []
        try:
            dcm = binance.DepthCacheManager(
                client, "BTCUSD", bm=manager, ws_interval=100, limit=1000
            )
            async with dcm as cache:
                while len(seen) < UPDATES + 3:
                    dc = await cache.recv()
                    seen.append((dc.update_time, len(seen), dc.get_bids(), dc.get_asks()))
        finally:
            await client.close_connection()
        return seen

    seen = await _in_thread(lambda: _run(main, truth, base))
    # its first updates may straddle its snapshot (python-binance refetches it then): skip them
    books = [(truth.u_at[e], b, a) for e, n, b, a in seen if n >= 3 and e in truth.u_at]
    assert truth.check(books) >= UPDATES * 3 // 4
    assert "/binance/ws/btcusd@depth@100ms" in venue.handshakes


async def test_ccxt_pro_watch_order_book_for_many_updates(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """ccxt.pro's binance checks U/u itself and raises on a break; its book is the server's."""
    ccxtpro = pytest.importorskip("ccxt.pro", reason="ccxt is not installed")
    venue = await _server(nursery, caplog)
    base = venue.url("")
    http = base.replace("ws://", "http://") + "/binance/api"
    truth = Truth()

    async def main() -> tuple[dict[str, Any], list[tuple[int, Side, Side]]]:
        exchange = ccxtpro.binance({"timeout": 20_000})
        exchange.urls["api"].update({"public": f"{http}/v3", "v1": f"{http}/v1"})
        exchange.urls["api"]["ws"]["spot"] = base + "/binance/ws"
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        seen = []
        try:
            fetched = await exchange.fetch_order_book("BTC/USD", limit=100)
            nonce = 0
            while len(seen) < UPDATES:
                book = await exchange.watch_order_book("BTC/USD")
                assert book["nonce"] > nonce
                nonce = book["nonce"]
                bids = [[float(p), float(q)] for p, q in book["bids"][:20]]
                asks = [[float(p), float(q)] for p, q in book["asks"][:20]]
                seen.append((nonce, bids, asks))
        finally:
            await exchange.close()
        return fetched, seen

    fetched, seen = await _in_thread(lambda: _run(main, truth, base))
    assert fetched["nonce"] > 0 and fetched["bids"][0][0] < fetched["asks"][0][0]
    assert truth.check(seen) >= UPDATES * 3 // 4


async def test_cryptofeed_l2_book_and_trades(
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    pytest.importorskip("cryptofeed", reason="cryptofeed is not installed")
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    env = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": str(ca_pem),  # cryptofeed's exchangeInfo: requests
        "SSL_CERT_FILE": str(ca_pem),  # its depth snapshot and streams: aiohttp, websockets
    }
    venue = await _server(nursery, caplog, certfile=str(pem))
    base = venue.url("").replace("wss://", "https://", 1)
    script = Path(__file__).with_name("cryptofeed_book.py")
    with trio.fail_after(DEADLINE_S + 15):
        done = await trio.run_process(
            [sys.executable, str(script), base, str(UPDATES)], env=env, capture_stdout=True
        )
    got = json.loads(done.stdout)
    truth = Truth()
    truth.book = {u: (b, a) for u, (b, a) in got["truth"]}
    seen = [(u, b, a) for u, b, a in got["seen"]]
    assert got["trades"] and all(0 < float(q) < 10 for q in got["trades"])  # BTC, not lots
    seqs = [u for u, _, _ in seen]
    assert seqs == sorted(seqs)
    assert truth.check(seen) >= UPDATES * 3 // 4
