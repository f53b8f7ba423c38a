"""The venues' own client libraries, unmodified, against the dialects over real loopback sockets.

Each SDK runs its own asyncio loop, so it runs in a worker thread under an absolute trio deadline;
the real feed server (`Server`, in process, as `tickwire serve` runs it) serves the dialects on
its one port beside `/v1`. A test skips, saying why, when its SDK is not installed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import msgpack
import pytest
import trio
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tickwire.feed.server.server import ServerConfig
from tickwire.simulators import Market, Universe

from ..._support import serve_process
from .conftest import CADENCE_MS, VenueServer, start

DEADLINE_S = 30  # generous for a shared 2-core machine; a pass takes well under a second


async def _in_thread(fn: Any) -> Any:
    with trio.fail_after(DEADLINE_S):
        return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


# ----------------------------------------------------------------------------- Alpaca


async def test_alpaca_py_stock_stream_gets_trades_and_quotes(venue_server: VenueServer) -> None:
    """alpaca-py's StockDataStream (MessagePack) hands parsed Trade and Quote models to handlers."""
    live = pytest.importorskip("alpaca.data.live", reason="alpaca-py is not installed")
    from alpaca.data.models import Quote, Trade

    got: dict[str, list[Any]] = {"trades": [], "quotes": []}
    stream = live.StockDataStream("key", "secret", url_override=venue_server.url("/alpaca/v2/iex"))

    async def done_if_both() -> None:
        if got["trades"] and got["quotes"]:
            await stream.stop_ws()

    async def on_trade(trade: Any) -> None:
        got["trades"].append(trade)
        await done_if_both()

    async def on_quote(quote: Any) -> None:
        got["quotes"].append(quote)
        await done_if_both()

    stream.subscribe_trades(on_trade, "AAPL")
    stream.subscribe_quotes(on_quote, "AAPL")
    try:
        await _in_thread(stream.run)
    except trio.TooSlowError:
        await trio.to_thread.run_sync(stream.stop, abandon_on_cancel=True)  # its public stop
        raise
    trade, quote = got["trades"][0], got["quotes"][0]
    assert isinstance(trade, Trade) and isinstance(quote, Quote)
    assert trade.symbol == "AAPL" and quote.symbol == "AAPL"
    assert trade.price > 0 and trade.size > 0 and trade.id >= 1
    assert 0 < quote.bid_price < quote.ask_price
    assert trade.timestamp.tzinfo is not None
    ids = [t.id for t in got["trades"]]
    assert ids == sorted(ids)
    assert "/alpaca/v2/iex" in venue_server.handshakes


class _Seen(logging.Handler):
    """Sets `event` when a log record's message contains `text` (any thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_alpaca_py_second_stream_on_a_key_gets_406_until_the_first_leaves(
    venue_server: VenueServer,
) -> None:
    """Two unmodified alpaca-py streams with one key on one feed: as at Alpaca, the second's
    `auth` is answered 406 and closed (the SDK logs it and retries with backoff); once the
    first stream stops, its slot is free and the second's retry streams quotes."""
    live = pytest.importorskip("alpaca.data.live", reason="alpaca-py is not installed")
    url = venue_server.url("/alpaca/v2/iex")
    first = live.StockDataStream("key", "secret", url_override=url)
    second = live.StockDataStream("key", "secret", url_override=url)
    first_quote = threading.Event()
    second_quotes: list[Any] = []

    async def on_first(quote: Any) -> None:
        first_quote.set()

    async def on_second(quote: Any) -> None:
        second_quotes.append(quote)
        await second.stop_ws()

    first.subscribe_quotes(on_first, "AAPL")
    second.subscribe_quotes(on_second, "AAPL")
    refused = _Seen("connection limit exceeded")
    sdk_log = logging.getLogger("alpaca.data.live.websocket")
    sdk_log.addHandler(refused)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_in_thread, first.run)
            assert await _in_thread(lambda: first_quote.wait(DEADLINE_S))
            nursery.start_soon(_in_thread, second.run)
            assert await _in_thread(lambda: refused.event.wait(DEADLINE_S))
            assert not second_quotes
            await _in_thread(first.stop)  # alpaca-py's public, thread-safe stop
    finally:
        sdk_log.removeHandler(refused)
        for stream in (first, second):
            await trio.to_thread.run_sync(stream.stop, abandon_on_cancel=True)
    assert second_quotes and second_quotes[0].symbol == "AAPL"
    closes = [
        r.getMessage()
        for r in venue_server.caplog.records
        if r.name == "tickwire.server" and "disconnected" in r.getMessage()
    ]
    assert any("code 1008 (connection limit exceeded)" in c for c in closes)


def test_alpaca_connections_per_key_flag() -> None:
    """`tickwire serve --alpaca-connections-per-key 2`: two JSON clients on one key stream, a
    third gets Alpaca's 406 and the close; another key is counted apart."""

    def auth(ws: Any, key: str) -> Any:
        assert json.loads(ws.recv(timeout=10)) == [{"T": "success", "msg": "connected"}]
        ws.send(json.dumps({"action": "auth", "key": key, "secret": "s"}))
        return json.loads(ws.recv(timeout=10))

    with serve_process("--cadence", "20", "--alpaca-connections-per-key", "2") as (_, v1):
        url = v1.removesuffix("/v1") + "/alpaca/v2/iex"
        with connect(url, open_timeout=10) as a, connect(url, open_timeout=10) as b:
            answers = [auth(a, "k"), auth(b, "k")]
            with connect(url, open_timeout=10) as c:
                refused = auth(c, "k")
                with pytest.raises(ConnectionClosed) as closed:
                    c.recv(timeout=10)
            with connect(url, open_timeout=10) as d:
                other = auth(d, "other key")
    assert answers == [[{"T": "success", "msg": "authenticated"}]] * 2
    assert refused == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert other == [{"T": "success", "msg": "authenticated"}]


async def test_alpaca_py_gets_minute_bars(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Bars built from the simulated trades reach alpaca-py's Bar model when a minute ends."""
    live = pytest.importorskip("alpaca.data.live", reason="alpaca-py is not installed")
    from alpaca.data.models import Bar

    minute = 60 * 10**9
    start_at = (time.time_ns() // minute + 1) * minute - 2 * 10**9  # 2 s before a minute ends
    harness = await start(nursery, caplog, start_ns=start_at)
    bars: list[Any] = []
    stream = live.StockDataStream("key", "secret", url_override=harness.url("/alpaca/v2/iex"))

    async def on_bar(bar: Any) -> None:
        bars.append(bar)
        await stream.stop_ws()

    stream.subscribe_bars(on_bar, "AAPL")
    try:
        await _in_thread(stream.run)
    except trio.TooSlowError:
        await trio.to_thread.run_sync(stream.stop, abandon_on_cancel=True)
        raise
    [bar, *_] = bars
    assert isinstance(bar, Bar) and bar.symbol == "AAPL"
    assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    assert bar.volume > 0 and bar.trade_count is not None and bar.trade_count > 0
    assert bar.timestamp.timestamp() * 10**9 == start_at - start_at % minute


async def test_alpaca_json_path_with_websockets(venue_server: VenueServer) -> None:
    """Without Content-Type: application/msgpack the same stream is JSON arrays of text."""

    def client() -> list[Any]:
        with connect(venue_server.url("/alpaca/v2/test"), open_timeout=10) as ws:
            seen = [json.loads(ws.recv(timeout=10))]
            ws.send(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
            seen.append(json.loads(ws.recv(timeout=10)))
            ws.send(json.dumps({"action": "subscribe", "trades": ["AAPL"], "quotes": ["AAPL"]}))
            seen.append(json.loads(ws.recv(timeout=10)))
            kinds: set[str] = set()
            while kinds != {"t", "q"}:
                data = ws.recv(timeout=10)
                assert isinstance(data, str)
                batch = json.loads(data)
                kinds |= {m["T"] for m in batch}
                seen.append(batch)
            return seen

    seen = await _in_thread(client)
    assert seen[0] == [{"T": "success", "msg": "connected"}]
    assert seen[1] == [{"T": "success", "msg": "authenticated"}]
    assert seen[2][0]["T"] == "subscription" and seen[2][0]["trades"] == ["AAPL"]
    data = [m for batch in seen[3:] for m in batch]
    assert {m["S"] for m in data} == {"AAPL"}
    assert all(m["t"].endswith("Z") for m in data)


async def test_alpaca_msgpack_with_websockets_and_token(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """MessagePack framing on request, and a wrong key is Alpaca's 402 when tokens are set:
    `--token` is checked by Alpaca's auth message, not by the HTTP front."""
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, tokens=("s3cret",))
    harness = await start(nursery, caplog, config)

    def client() -> list[Any]:
        headers = {"Content-Type": "application/msgpack"}
        url = harness.url("/alpaca/v2/sip")
        with connect(url, additional_headers=headers, open_timeout=10) as ws:
            out = [msgpack.unpackb(ws.recv(timeout=10))]
            ws.send(msgpack.packb({"action": "auth", "key": "nope", "secret": "nope"}))
            out.append(msgpack.unpackb(ws.recv(timeout=10)))
            ws.send(msgpack.packb({"action": "auth", "key": "s3cret", "secret": "x"}))
            out.append(msgpack.unpackb(ws.recv(timeout=10)))
            return out

    out = await _in_thread(client)
    assert out == [
        [{"T": "success", "msg": "connected"}],
        [{"T": "error", "code": 402, "msg": "auth failed"}],
        [{"T": "success", "msg": "authenticated"}],
    ]


# ----------------------------------------------------------------------------- Binance


async def test_python_binance_gets_book_ticker_and_trades(venue_server: VenueServer) -> None:
    """python-binance's BinanceSocketManager, its STREAM_URL pointed at /binance/."""
    binance = pytest.importorskip("binance", reason="python-binance is not installed")

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        client = binance.AsyncClient()  # no REST call: only the socket manager is used
        try:
            manager = binance.BinanceSocketManager(client)
            manager.STREAM_URL = venue_server.url("/binance/")
            async with manager.symbol_book_ticker_socket("AAPL") as book:
                ticker = await asyncio.wait_for(book.recv(), 10)
            async with manager.trade_socket("AAPL") as trades:
                trade = await asyncio.wait_for(trades.recv(), 10)
            return ticker, trade
        finally:
            await client.close_connection()

    ticker, trade = await _in_thread(lambda: asyncio.run(main()))
    assert ticker["s"] == "AAPL" and float(ticker["b"]) < float(ticker["a"])
    assert trade["e"] == "trade" and trade["s"] == "AAPL" and isinstance(trade["p"], str)
    assert "/binance/ws/aapl@bookTicker" in venue_server.handshakes
    assert "/binance/ws/aapl@trade" in venue_server.handshakes


async def test_binance_combined_streams_with_websockets(venue_server: VenueServer) -> None:
    """`/stream?streams=a/b` wraps payloads as {"stream", "data"}; SUBSCRIBE adds one live."""

    def client() -> tuple[set[str], Any, Any]:
        url = venue_server.url("/binance/stream?streams=aapl@trade/msft@bookTicker")
        with connect(url, open_timeout=10) as ws:
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["nvda@aggTrade"], "id": 7}))
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            streams: set[str] = set()
            replies = []
            while len(replies) < 2 or streams != {"aapl@trade", "msft@bookTicker", "nvda@aggTrade"}:
                msg = json.loads(ws.recv(timeout=10))
                if "id" in msg:
                    replies.append(msg)
                else:
                    assert set(msg) == {"stream", "data"}
                    streams.add(msg["stream"])
            return streams, replies[0], replies[1]

    streams, subscribed, listed = await _in_thread(client)
    assert streams == {"aapl@trade", "msft@bookTicker", "nvda@aggTrade"}
    assert subscribed == {"result": None, "id": 7}
    assert listed == {"result": ["aapl@trade", "msft@bookTicker", "nvda@aggTrade"], "id": 8}


async def _pings(url: str, answer: bool, want: int) -> tuple[list[bytes], int | None]:
    """A `websockets` client (its sans-IO protocol over a trio socket) on `url`: the payloads
    of the pings it saw, up to `want`, and the close code if the server closed first. It
    answers each ping (websockets queues the pong) only if `answer`."""
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    protocol = ClientProtocol(parse_uri(url))
    protocol.send_request(protocol.connect())
    pings: list[bytes] = []
    host, port = parse_uri(url).host, parse_uri(url).port
    with trio.fail_after(DEADLINE_S):
        sock = await trio.open_tcp_stream(host, port)
        async with sock:
            for data in protocol.data_to_send():
                await sock.send_all(data)
            while len(pings) < want:
                data = await sock.receive_some()
                protocol.receive_data(data)
                closed = None
                for event in protocol.events_received():
                    if isinstance(event, Response):
                        assert event.status_code == 101
                    elif event.opcode is Opcode.PING:
                        pings.append(event.data)
                    elif event.opcode is Opcode.CLOSE and protocol.close_rcvd is not None:
                        closed = protocol.close_rcvd.code
                replies = protocol.data_to_send()
                if answer or closed is not None:  # the close handshake is always answered
                    for reply in replies:
                        if reply:
                            await sock.send_all(reply)
                if closed is not None:
                    while await sock.receive_some():  # until the server closes TCP
                        pass
                    return pings, closed
                if not data:
                    break
    return pings, None
    return pings, None


async def test_binance_server_pings_reach_a_websockets_client(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Binance's keepalive on a real socket, with a 0.2 s interval for the test (20 s by
    default): a client that answers keeps being pinged; one that never answers is closed
    with 1008 three intervals (Binance: a minute) after its first ping."""
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, binance_ping_s=0.2)
    srv = await start(nursery, caplog, config)
    url = srv.url("/binance/ws/aapl@trade")
    pings, closed = await _pings(url, answer=True, want=5)  # past 3 intervals: still open
    assert pings == [str(i).encode() for i in range(1, 6)] and closed is None
    pings, closed = await _pings(url, answer=False, want=100)
    assert pings == [b"1", b"2", b"3"] and closed == 1008
    assert any("no pong within 0.6 s" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- Coinbase


async def test_coinbase_ticker_matches_heartbeat_with_websockets(
    venue_server: VenueServer,
) -> None:
    subscribe = {
        "type": "subscribe",
        "product_ids": ["AAPL"],
        "channels": ["ticker", "heartbeat", {"name": "matches", "product_ids": ["MSFT"]}],
    }

    def session(ws: Any) -> list[dict[str, Any]]:
        ws.send(json.dumps(subscribe))
        out = [json.loads(ws.recv(timeout=10))]
        types: set[str] = set()
        while not types >= {"ticker", "heartbeat", "match"}:
            msg = json.loads(ws.recv(timeout=10))
            types.add(msg["type"])
            out.append(msg)
        return out

    def client() -> list[dict[str, Any]]:
        # The second client's subscription starts with the latest ticker and last_match.
        with connect(venue_server.url("/coinbase"), open_timeout=10) as first:
            session(first)
            with connect(venue_server.url("/coinbase"), open_timeout=10) as second:
                return session(second)

    out = await _in_thread(client)
    assert out[0] == {
        "type": "subscriptions",
        "channels": [
            {"name": "ticker", "product_ids": ["AAPL"]},
            {"name": "matches", "product_ids": ["MSFT"]},
            {"name": "heartbeat", "product_ids": ["AAPL"]},
        ],
    }
    assert out[1]["type"] in ("ticker", "last_match")  # the latest trade comes first
    by_type = {m["type"]: m for m in out[1:]}
    assert by_type["ticker"]["product_id"] == "AAPL"
    assert by_type["match"]["product_id"] == "MSFT"
    assert by_type["heartbeat"]["product_id"] == "AAPL"


async def test_coinbase_first_client_gets_the_current_ticker_at_subscribe(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """The very first Coinbase client of a market that has traded: right after `subscriptions`,
    the current ticker and last_match (from the hub's latest record), then the next trades."""
    start_ns = 1_700_000_035 * 10**9
    market = Market(Universe.default(), seed=5, start_ns=start_ns)
    market.step(start_ns + 30 * 10**9)  # 30 s of trading before the server starts
    srv = await start(nursery, caplog, start_ns=start_ns + 30 * 10**9, market=market)
    assert srv.server.hub.lvc["volume"][Universe.default().index("AAPL")] > 0
    sub = {"type": "subscribe", "product_ids": ["AAPL"], "channels": ["ticker", "matches"]}

    def client() -> list[dict[str, Any]]:
        with connect(srv.url("/coinbase"), open_timeout=10) as ws:
            ws.send(json.dumps(sub))
            out = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
            while out[-1]["type"] != "match":
                out.append(json.loads(ws.recv(timeout=10)))
            return out

    out = await _in_thread(client)
    assert [m["type"] for m in out[:3]] == ["subscriptions", "ticker", "last_match"]
    ticker, last_match, match = out[1], out[2], out[-1]
    assert ticker["product_id"] == last_match["product_id"] == "AAPL"
    assert float(ticker["price"]) > 0 and ticker["trade_id"] == last_match["trade_id"]
    assert match["trade_id"] == match["sequence"] > ticker["trade_id"]  # ids: the records' seq


async def test_coinbase_subscribe_deadline_closes(venue_server: VenueServer) -> None:
    harness = venue_server

    def client() -> tuple[Any, int | None]:
        from websockets.exceptions import ConnectionClosed

        with connect(harness.url("/coinbase"), open_timeout=10) as ws:
            error = json.loads(ws.recv(timeout=15))
            try:
                ws.recv(timeout=5)
            except ConnectionClosed as exc:
                return error, exc.rcvd.code if exc.rcvd else None
            return error, None

    error, code = await _in_thread(client)
    assert error["type"] == "error" and "5 seconds" in error["reason"]
    assert code == 1008


async def test_unknown_venue_path_is_refused(venue_server: VenueServer) -> None:
    from websockets.exceptions import InvalidStatus

    def client(path: str) -> int:
        try:
            with connect(venue_server.url(path), open_timeout=10):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert await _in_thread(lambda: client("/alpaca/v2/crypto")) == 404
    assert await _in_thread(lambda: client("/binance/ws/AAPL@trade")) == 400
