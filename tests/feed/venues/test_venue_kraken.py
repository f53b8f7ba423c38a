"""Kraken WebSocket v2 (`/kraken/v2`): the session and encoder with plain strings (no sockets, no
trio), then a plain websockets client following Kraken's documented flow against the real
server on loopback."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
import trio

from tickwire.feed.server.server import ServerConfig
from tickwire.feed.venues import HandshakeRefused, Reply, Upgrade, route
from tickwire.feed.venues.kraken import HEARTBEAT_NS, MAX_MESSAGES_PER_S, KrakenSession
from tickwire.feed.venues.kraken_encoder import KrakenEncoder
from tickwire.simulators.universe import Universe

from ._shapes import TRADE_BUY, TRADE_SELL, assert_shape, market_batches, records
from .conftest import CADENCE_MS, VenueServer, start

CRYPTO = Universe.crypto_pairs()
BTC = CRYPTO.index("BTC-USD")
S = 10**9

# Kraken's documented examples (docs.kraken.com, WebSocket v2), as data.
DOC_TICKER = {
    "channel": "ticker",
    "type": "snapshot",
    "data": [
        {
            "symbol": "ALGO/USD",
            "bid": 0.10025,
            "bid_qty": 740.0,
            "ask": 0.10036,
            "ask_qty": 1361.44813783,
            "last": 0.10035,
            "volume": 997038.98383185,
            "vwap": 0.10148,
            "low": 0.09979,
            "high": 0.10285,
            "change": -0.00017,
            "change_pct": -0.17,
            "timestamp": "2023-09-25T09:04:31.742648Z",
        }
    ],
}
DOC_TRADE = {
    "channel": "trade",
    "type": "update",
    "data": [
        {
            "symbol": "MATIC/USD",
            "side": "sell",
            "price": 0.5117,
            "qty": 40.0,
            "ord_type": "market",
            "trade_id": 4665906,
            "timestamp": "2023-09-25T07:49:37.708706Z",
        }
    ],
}
DOC_ACK = {
    "method": "subscribe",
    "result": {
        "channel": "ticker",
        "symbol": "ALGO/USD",
        "event_trigger": "trades",
        "snapshot": True,
    },
    "success": True,
    "time_in": "2023-09-25T09:04:31.742599Z",
    "time_out": "2023-09-25T09:04:31.742648Z",
    "req_id": 1,
}
DOC_PONG = {
    "method": "pong",
    "req_id": 101,
    "time_in": "2023-09-24T14:10:23.799685Z",
    "time_out": "2023-09-24T14:10:23.799703Z",
}


def _said(reply: Reply) -> list[dict[str, Any]]:
    return [orjson.loads(f.data) for f in reply.frames]


def _session(encoder: KrakenEncoder | None = None) -> KrakenSession:
    """A session as the server makes it; with `encoder`, its snapshots come from `latest`."""
    if encoder is None:
        factory = route("/kraken/v2")
        assert factory is not None
        session = factory(Upgrade("/kraken/v2", "", {}, CRYPTO, (), 0))
        assert isinstance(session, KrakenSession)
        return session
    return KrakenSession(CRYPTO, 0, current=lambda venue, sym, ch: encoder.current(latest[sym], ch))


latest = records(*({"sym": i, "seq": 1, "ts": S, "last": 100.0} for i in range(len(CRYPTO))))


def _send(session: KrakenSession, msg: Any, now_ns: int = S) -> list[dict[str, Any]]:
    return _said(session.receive(json.dumps(msg), now_ns))


def test_status_then_subscribe_acks_each_symbol_then_its_snapshot():
    session = _session(KrakenEncoder(CRYPTO))
    [status] = _said(session.opened(0))
    assert status["channel"] == "status" and status["type"] == "update"
    assert status["data"][0]["api_version"] == "v2" and status["data"][0]["system"] == "online"
    params = {"channel": "ticker", "symbol": ["BTC/USD", "NOPE/USD"]}
    ack, snapshot, error = _send(session, {"method": "subscribe", "params": params, "req_id": 1})
    assert_shape({**ack, "result": {**ack["result"], "symbol": "ALGO/USD"}}, DOC_ACK)
    assert ack["result"]["symbol"] == "BTC/USD" and ack["req_id"] == 1
    assert_shape(snapshot, DOC_TICKER)
    assert snapshot["data"][0]["symbol"] == "BTC/USD"
    assert error["success"] is False and error["symbol"] == "NOPE/USD"
    assert error["error"] == "Currency pair not supported NOPE/USD" and error["req_id"] == 1
    assert session.symbols == {BTC}
    [again] = _send(session, {"method": "subscribe", "params": params | {"symbol": ["BTC/USD"]}})
    assert again == {**again, "success": False, "error": "Already subscribed"}


def test_trade_snapshot_is_the_latest_trade():
    encoder = KrakenEncoder(CRYPTO)
    session = _session(encoder)
    params = {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True}
    ack, snapshot = _send(session, {"method": "subscribe", "params": params})
    assert ack["result"]["snapshot"] is True
    assert snapshot == {"channel": "trade", "type": "snapshot", "data": []}  # none yet
    traded = records({"sym": BTC, "seq": 9, "ts": S, "flags": TRADE_BUY, "last_size": 5})
    [data] = orjson.loads(encoder.current(traded[0], "trade") or b"")["data"]
    assert (data["trade_id"], data["side"], data["qty"]) == (9, "buy", 0.00005)


def test_unsubscribe_ping_and_errors():
    session = _session()
    params = {"channel": "trade", "symbol": ["BTC/USD"]}
    [ack] = _send(session, {"method": "subscribe", "params": params})
    assert ack["result"] == {"channel": "trade", "symbol": "BTC/USD", "snapshot": False}
    [pong] = _send(session, {"method": "ping", "req_id": 101})
    assert_shape(pong, DOC_PONG)
    [done] = _send(session, {"method": "unsubscribe", "params": params, "req_id": 2})
    assert done["success"] and done["result"] == {"channel": "trade", "symbol": "BTC/USD"}
    assert session.symbols == frozenset()
    [gone] = _send(session, {"method": "unsubscribe", "params": params})
    assert gone["error"] == "Subscription Not Found"
    for bad, why in [
        ("{nope", "Malformed request: not JSON"),
        ("[1]", "Malformed request: not a JSON object"),
        ({"method": "fly"}, "Method not found: 'fly'"),
        ({"method": "subscribe"}, "EGeneral:Invalid arguments:params"),
        (
            {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}},
            "--book-depth",
        ),
        ({"method": "subscribe", "params": {"channel": "nope", "symbol": ["BTC/USD"]}}, "nope"),
        ({"method": "subscribe", "params": {"channel": "trade", "symbol": "BTC/USD"}}, "symbol"),
        ({"method": "subscribe", "params": params | {"depth": 10}}, "Invalid arguments:depth"),
        ({"method": "subscribe", "params": params | {"snapshot": "yes"}}, "params"),
        ({"method": "ping", "req_id": "x"}, "req_id"),
    ]:
        text = bad if isinstance(bad, str) else json.dumps(bad)
        [error] = _said(session.receive(text, S))
        assert error["success"] is False and why in error["error"], (bad, error)
        assert set(error) <= {"error", "method", "success", "time_in", "time_out", "req_id"}


def test_heartbeat_each_second_without_other_messages_while_subscribed():
    session = _session()
    session.opened(0)
    assert session.next_deadline() is None  # nothing subscribed: no heartbeat
    _send(session, {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    due = session.next_deadline()
    assert due == S + HEARTBEAT_NS
    assert session.timeout(due - 1).frames == []
    assert _said(session.timeout(due)) == [{"channel": "heartbeat"}]
    assert session.next_deadline() == due + HEARTBEAT_NS


def test_too_many_messages_close_with_1008():
    session = _session()
    for _ in range(MAX_MESSAGES_PER_S):
        assert session.receive('{"method":"ping"}', S).close is None
    close = session.receive('{"method":"ping"}', S).close
    assert close is not None and close.code == 1008


def test_trades_and_both_ticker_triggers_from_a_batch():
    encoder = KrakenEncoder(CRYPTO)
    trades, bbo = _session(), _session()
    _send(trades, {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    _send(
        trades,
        {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}},
    )
    ticker_bbo = {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo"}
    _send(bbo, {"method": "subscribe", "params": ticker_bbo | {"snapshot": False}})
    book = {
        "sym": BTC,
        "bid": 95000.0,
        "ask": 95000.01,
        "bid_size": 300,
        "ask_size": 200,
        "last": 95000.0,
    }
    batch = records(
        {**book, "seq": 5, "ts": 2 * S},
        {
            **book,
            "seq": 6,
            "ts": 3 * S,
            "flags": TRADE_BUY,
            "last": 95000.01,
            "last_size": 210,
            "volume": 210,
        },
        {
            **book,
            "seq": 7,
            "ts": 4 * S,
            "flags": TRADE_SELL,
            "last": 95000.0,
            "last_size": 3,
            "volume": 213,
        },
        {"sym": BTC + 1, "seq": 8, "ts": 5 * S, "flags": TRADE_SELL, "last": 3500.0},
    )
    shared = encoder.encode(batch, 5 * S)
    got = [orjson.loads(f.data) for f in trades.deliver(shared)]
    assert [(m["channel"], m["type"]) for m in got] == [
        ("trade", "update"),
        ("ticker", "update"),
    ] * 2
    first, ticker = got[0]["data"][0], got[1]["data"][0]
    assert_shape(got[0], DOC_TRADE)
    assert (first["side"], first["qty"], first["trade_id"]) == ("buy", 0.0021, 6)
    assert_shape({**got[1], "type": "snapshot"}, DOC_TICKER)
    assert ticker["last"] == 95000.01 and ticker["bid_qty"] == 0.003 and ticker["ask_qty"] == 0.002
    last = got[3]["data"][0]
    assert last["volume"] == 0.00213 and last["low"] == 95000.0 and last["high"] == 95000.01
    quotes = [orjson.loads(f.data)["data"][0] for f in bbo.deliver(shared)]
    assert len(quotes) == 1 and quotes[0]["bid"] == 95000.0  # the book changed once only


def test_a_real_market_s_messages_keep_kraken_s_shapes():
    universe, batches = market_batches(CRYPTO, seconds=3)
    encoder, session = KrakenEncoder(universe), _session()
    for channel in ("trade", "ticker"):
        params = {"channel": channel, "symbol": ["BTC/USD", "ETH/USD"]}
        _send(session, {"method": "subscribe", "params": params})
    seen = [
        orjson.loads(f.data) for b, now in batches for f in session.deliver(encoder.encode(b, now))
    ]
    assert {m["channel"] for m in seen} == {"trade", "ticker"}
    for m in seen:
        doc = DOC_TRADE if m["channel"] == "trade" else {**DOC_TICKER, "type": "update"}
        assert_shape(m, doc)
        assert m["data"][0]["symbol"] in ("BTC/USD", "ETH/USD")


def test_only_v2_is_a_kraken_path():
    factory = route("/kraken/v1")
    assert factory is not None
    with pytest.raises(HandshakeRefused) as refused:
        factory(Upgrade("/kraken/v1", "", {}, CRYPTO, (), 0))
    assert refused.value.status == 404 and "/kraken/v2" in refused.value.reason


# ---------------------------------------------------------------- over a real socket


async def test_websockets_client_follows_kraken_s_flow(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
):
    """A plain websockets client, as Kraken's docs describe the flow: the status message,
    subscribe (ticker and trade of BTC/USD, with req_ids), the acks and the ticker snapshot,
    updates with `data` lists, and a ping answered by a pong with its req_id."""
    from websockets.sync.client import connect

    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=CRYPTO, session="24h")
    venue: VenueServer = await start(nursery, caplog, config)

    def client() -> list[dict[str, Any]]:
        got = []
        with connect(venue.url("/kraken/v2"), open_timeout=10) as ws:
            got.append(json.loads(ws.recv(timeout=10)))
            for i, channel in enumerate(("ticker", "trade"), 1):
                params = {"channel": channel, "symbol": ["BTC/USD"]}
                ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": i}))
            while sum(m.get("channel") == "trade" for m in got) < 3:
                got.append(json.loads(ws.recv(timeout=10)))
            ws.send(json.dumps({"method": "ping", "req_id": 42}))
            while got[-1].get("method") != "pong":
                got.append(json.loads(ws.recv(timeout=10)))
        return got

    with trio.fail_after(30):
        got = await trio.to_thread.run_sync(client, abandon_on_cancel=True)
    assert got[0]["channel"] == "status"
    acks = [m for m in got if m.get("method") == "subscribe"]
    assert [(a["req_id"], a["success"]) for a in acks] == [(1, True), (2, True)]
    tickers = [m for m in got if m.get("channel") == "ticker"]
    assert tickers[0]["type"] == "snapshot" and all(t["type"] == "update" for t in tickers[1:])
    trades = [m["data"][0] for m in got if m.get("channel") == "trade"]
    assert all(t["symbol"] == "BTC/USD" and 0 < t["qty"] < 10 for t in trades)  # in BTC
    ids = [t["trade_id"] for t in trades]
    assert ids == sorted(ids)
    assert got[-1]["req_id"] == 42
    assert "/kraken/v2" in venue.handshakes
