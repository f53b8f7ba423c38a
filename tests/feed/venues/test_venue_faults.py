"""Injected faults on the venue paths, with the venues' own client libraries, unmodified: the
operator's `--faults /binance=disconnect:...` (they cannot change their URLs) resets their
connection, and they reconnect by themselves and go on receiving; maintenance closes as each
venue does. Each SDK runs its asyncio loop in a worker thread under an absolute trio deadline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tickwire.feed.faults import parse_spec
from tickwire.feed.server.server import ServerConfig
from tickwire.simulators import Universe

from .conftest import CADENCE_MS, VenueServer, start

DEADLINE_S = 60


async def _in_thread(fn: Any) -> Any:
    with trio.fail_after(DEADLINE_S):
        return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


async def _faulty_server(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, path: str, spec: str
) -> VenueServer:
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, faults=((path, parse_spec(spec)),))
    return await start(nursery, caplog, config)


async def test_python_binance_reconnects_after_a_disconnect_fault(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    binance = pytest.importorskip("binance", reason="python-binance is not installed")
    venue = await _faulty_server(nursery, caplog, "/binance", "disconnect:1s")

    errors: list[str] = []

    async def main() -> list[dict[str, Any]]:
        client = binance.AsyncClient()  # no REST call: only the socket manager is used
        got: list[dict[str, Any]] = []
        try:
            manager = binance.BinanceSocketManager(client)
            manager.STREAM_URL = venue.url("/binance/")
            async with manager.trade_socket("AAPL") as trades:
                while True:  # until a trade on its second connection, after the reset
                    msg = await asyncio.wait_for(trades.recv(), 20)
                    if msg.get("e") == "trade":
                        got.append(msg)
                        if len(venue.handshakes) >= 2:
                            break
                    else:  # python-binance says so, then reconnects by itself
                        errors.append(msg["type"])
            return got
        finally:
            await client.close_connection()

    got = await _in_thread(lambda: asyncio.run(main()))
    assert venue.handshakes.count("/binance/ws/aapl@trade") >= 2  # it came back by itself
    assert venue.server.faults.counts["disconnect"] >= 1
    assert got and got[-1]["s"] == "AAPL"
    assert errors[0] == "ConnectionClosedError"  # a reset: no close frame


@pytest.mark.parametrize(
    ("path", "first", "code"),
    [
        ("/binance/ws/aapl@trade", None, 1001),
        ("/coinbase", {"type": "error", "message": "service unavailable"}, 1001),
        ("/alpaca/v2/test", {"T": "error", "code": 500, "msg": "internal error"}, 1001),
        (
            "/alpaca/v1beta3/crypto/us",
            {"T": "error", "code": 500, "msg": "internal error"},
            1001,
        ),
        ("/kraken/v2", {"channel": "status", "type": "update"}, 1001),
    ],
)
async def test_maintenance_closes_as_the_venue_does(
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    path: str,
    first: dict[str, Any] | None,
    code: int,
) -> None:
    venue = await _faulty_server(nursery, caplog, "/", "drop:0")  # nothing by default

    def client() -> tuple[list[Any], int | None]:
        got: list[Any] = []
        with connect(venue.url(f"{path}?faults=maintenance:1s&seed=1")) as ws:
            if path.startswith("/alpaca"):
                pair = "BTC/USD" if "crypto" in path else "AAPL"
                ws.send(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
                ws.send(json.dumps({"action": "subscribe", "quotes": [pair]}))
            if path == "/kraken/v2":
                params = {"channel": "ticker", "symbol": ["AAPL/USD"]}
                ws.send(json.dumps({"method": "subscribe", "params": params}))
            if path == "/coinbase":
                ws.send(
                    json.dumps(
                        {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["ticker"]}
                    )
                )
            try:
                while True:
                    got.append(json.loads(ws.recv(timeout=10)))
            except ConnectionClosed as exc:
                return got, exc.rcvd.code if exc.rcvd else None

    got, closed = await _in_thread(client)
    assert closed == code
    if first is not None:  # Alpaca's messages come in arrays
        last = got[-1][-1] if isinstance(got[-1], list) else got[-1]
        assert {k: last.get(k) for k in first} == first
        if path == "/kraken/v2":
            assert last["data"][0]["system"] == "maintenance"
    assert venue.server.faults.counts == {"maintenance": 1}


async def test_ccxt_pro_binance_reconnects_after_a_disconnect_fault(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """ccxt.pro's binance, its URLs pointed here: its stream URL carries the faults (ccxt adds
    its stream number after the base, which lands in an ignored query parameter)."""
    ccxt_pro = pytest.importorskip("ccxt.pro", reason="ccxt is not installed")
    universe = Universe.crypto_pairs()
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=universe, session="24h")
    venue = await start(nursery, caplog, config)
    base = venue.url("/binance/api").replace("ws://", "http://", 1)
    ws = venue.url("/binance/ws?faults=disconnect:1s&seed=1&stream=")

    async def main() -> tuple[list[Any], list[str]]:
        exchange = ccxt_pro.binance({"timeout": 20_000})
        exchange.urls["api"].update({"public": f"{base}/v3", "v1": f"{base}/v1"})
        exchange.urls["api"]["ws"]["spot"] = ws
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        got, errors = [], []
        try:
            await exchange.load_markets()
            while len(venue.handshakes) < 2 or not got:
                try:
                    trades = await exchange.watch_trades("BTC/USD")
                except ccxt_pro.NetworkError as exc:  # the reset: ccxt says so; call again
                    errors.append(type(exc).__name__)
                    continue
                if len(venue.handshakes) >= 2:
                    got.extend(trades)
            return got, errors
        finally:
            await exchange.close()

    got, errors = await _in_thread(lambda: asyncio.run(main()))
    assert errors and venue.server.faults.counts["disconnect"] >= 1
    assert len([p for p in venue.handshakes if p.startswith("/binance/ws")]) >= 2
    assert got and got[-1]["symbol"] == "BTC/USD"


async def test_binance_drops_and_duplicates_are_per_message(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Each Binance message is faulted on its own (a send holds several), at the rates asked;
    the client receives what was taken, less the drops, plus the duplicates."""
    venue = await _faulty_server(nursery, caplog, "/", "drop:0")  # nothing by default

    def client() -> int:
        url = venue.url("/binance/ws/aapl@bookTicker/msft@bookTicker?faults=drop:0.2,dup:0.1")
        with connect(url) as ws:
            for _ in range(1200):
                json.loads(ws.recv(timeout=10))
        return 1200

    received = await _in_thread(client)
    with trio.fail_after(10):
        while venue.server.connections:  # its counts are final once it is gone
            await trio.sleep(0.01)
    taken = venue.server.venue_ctx.fanout.frames_delivered
    counts = venue.server.faults.counts
    assert abs(counts["drop"] / taken - 0.2) < 0.03, (counts, taken)
    assert abs(counts["dup"] / (taken - counts["drop"]) - 0.1) < 0.03, (counts, taken)
    sent = taken - counts["drop"] + counts["dup"]
    assert 0.95 * sent <= received <= sent  # those sent as the client closed were not read


async def test_kraken_book_checksums_corrupted_are_each_seen_by_a_client(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """`corrupt` on Kraken's book: a client keeping the book by Kraken's rules sees every
    corrupted checksum it reads (and resubscribes for a snapshot, as Kraken advises); a symbol
    corrupted once is left alone until then, so at most one per symbol is still unread."""
    from ._kraken_book import ClientBook
    from ._kraken_book import parse as parse_kraken

    u = Universe.crypto_pairs()
    config = ServerConfig(
        port=0,
        cadence_ms=CADENCE_MS,
        universe=u,
        session="24h",
        book_depth=20,
        faults=(("/kraken", parse_spec("corrupt:0.1")),),
        seed=3,
    )
    venue = await start(nursery, caplog, config)
    pairs = ["SOL/USD", "XRP/USD"]

    def client() -> tuple[int, int]:
        books: dict[str, ClientBook] = {}
        seen = checked = 0
        with connect(venue.url("/kraken/v2"), open_timeout=10) as ws:
            params = {"channel": "book", "symbol": pairs, "depth": 10}
            ws.send(json.dumps({"method": "subscribe", "params": params}))
            while checked < 300:
                msg = parse_kraken(ws.recv(timeout=10))
                if msg.get("channel") != "book":
                    continue
                [data] = msg["data"]
                symbol = data["symbol"]
                if msg["type"] == "snapshot":
                    books[symbol] = ClientBook(10)
                elif symbol not in books:
                    continue  # resubscribed: the snapshot comes first
                try:
                    books[symbol].apply(data)
                    checked += 1
                except AssertionError:
                    seen += 1
                    del books[symbol]
                    again = {"channel": "book", "symbol": [symbol], "depth": 10}
                    for method in ("unsubscribe", "subscribe"):
                        ws.send(json.dumps({"method": method, "params": again}))
        return seen, checked

    with trio.fail_after(90):
        seen, checked = await _in_thread(client)
    injected = venue.server.faults.counts.get("corrupt", 0)
    assert seen >= 3 and checked >= 300
    assert seen <= injected <= seen + len(pairs)
