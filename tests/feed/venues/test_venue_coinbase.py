"""The Coinbase dialect's core with plain messages: no sockets, no trio."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed.venues.coinbase import CoinbaseEncoder, CoinbaseSession
from tickwire.simulators.market import Market
from tickwire.simulators.ticks import TickBatch
from tickwire.simulators.universe import Universe

from ._shapes import (
    START_NS,
    TRADE_BUY,
    TRADE_SELL,
    assert_shape,
    market_batches,
    records,
    trade_seqs,
)

# The Coinbase Exchange websocket feed's documented examples, as data.
DOC_TICKER = {
    "type": "ticker",
    "sequence": 37475248783,
    "product_id": "ETH-USD",
    "price": "1285.22",
    "open_24h": "1310.79",
    "volume_24h": "245532.79269678",
    "low_24h": "1280.52",
    "high_24h": "1313.8",
    "volume_30d": "9788783.60117027",
    "best_bid": "1285.04",
    "best_bid_size": "0.46688654",
    "best_ask": "1285.27",
    "best_ask_size": "1.56637040",
    "side": "buy",
    "time": "2022-10-19T23:28:22.061769Z",
    "trade_id": 370843401,
    "last_size": "11.4396987",
}
DOC_MATCH = {
    "type": "match",
    "trade_id": 10,
    "sequence": 50,
    "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
    "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
    "time": "2014-11-07T08:19:27.028459Z",
    "product_id": "BTC-USD",
    "size": "5.23512",
    "price": "400.23",
    "side": "sell",
}
DOC_HEARTBEAT = {
    "type": "heartbeat",
    "sequence": 90,
    "last_trade_id": 20,
    "product_id": "BTC-USD",
    "time": "2014-11-07T08:19:28.464459Z",
}
DOC_SUBSCRIPTIONS = {
    "type": "subscriptions",
    "channels": [{"name": "level2", "product_ids": ["ETH-USD", "ETH-EUR"]}],
}
DOC_ERROR = {"type": "error", "message": "error message", "reason": "reason"}
NOW = 1_700_000_000 * 10**9
U = Universe.default()
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def ask(s: CoinbaseSession, msg: Any) -> list[Any]:
    return [orjson.loads(f.data) for f in s.receive(json.dumps(msg), NOW).frames]


def test_subscribe_with_names_and_objects() -> None:
    s = CoinbaseSession(U, NOW)
    request = {
        "type": "subscribe",
        "product_ids": ["AAPL", "MSFT"],
        "channels": ["heartbeat", {"name": "ticker", "product_ids": ["NVDA"]}],
    }
    [reply] = ask(s, request)
    assert_shape(reply, DOC_SUBSCRIPTIONS)
    assert reply["channels"] == [
        {"name": "ticker", "product_ids": ["NVDA"]},
        {"name": "heartbeat", "product_ids": ["AAPL", "MSFT"]},
    ]
    assert s.symbols == {U.index(p) for p in ("AAPL", "MSFT", "NVDA")}
    assert s.next_deadline() is None
    [reply] = ask(s, {"type": "unsubscribe", "product_ids": ["AAPL"], "channels": ["heartbeat"]})
    assert reply["channels"][1] == {"name": "heartbeat", "product_ids": ["MSFT"]}
    [reply] = ask(s, {"type": "unsubscribe", "channels": ["heartbeat"]})
    assert reply["channels"] == [{"name": "ticker", "product_ids": ["NVDA"]}]


def test_errors() -> None:
    s = CoinbaseSession(U, NOW)
    cases = [
        {"type": "subscribe", "product_ids": ["DOGE-USD"], "channels": ["ticker"]},
        {"type": "subscribe", "product_ids": ["AAPL"], "channels": ["level2"]},
        {"type": "subscribe", "product_ids": ["AAPL"], "channels": ["nope"]},
        {"type": "subscribe", "product_ids": ["AAPL"], "channels": []},
        {"type": "subscribe", "channels": ["ticker"]},
        {"type": "subscribe", "product_ids": "AAPL", "channels": ["ticker"]},
        {"type": "hello"},
        [1, 2],
    ]
    for request in cases:
        [reply] = ask(s, request)
        assert reply["type"] == "error", request
        assert_shape(reply, DOC_ERROR)
    [bad] = [orjson.loads(f.data) for f in s.receive("{oops", NOW).frames]
    assert bad == {"type": "error", "message": "Malformed JSON"}
    assert s.symbols == frozenset() and s.next_deadline() == NOW + 5 * 10**9


def test_subscribe_deadline() -> None:
    s = CoinbaseSession(U, NOW)
    deadline = s.next_deadline()
    assert deadline == NOW + 5 * 10**9
    assert s.timeout(deadline - 1).close is None
    reply = s.timeout(deadline)
    assert reply.close is not None and reply.close.code == 1008
    [error] = [orjson.loads(f.data) for f in reply.frames]
    assert error["type"] == "error"


def test_golden_messages_from_a_real_market() -> None:
    u, batches = market_batches()
    enc, s = CoinbaseEncoder(u), CoinbaseSession(u, NOW)
    ask(
        s,
        {
            "type": "subscribe",
            "product_ids": ["AAPL"],
            "channels": ["ticker", "matches", "heartbeat"],
        },
    )
    seen: dict[str, list[Any]] = {"ticker": [], "match": [], "heartbeat": []}
    for batch, now in batches:
        for frame in s.deliver(enc.encode(batch, now)):
            m = orjson.loads(frame.data)
            seen[m["type"]].append(m)
    assert_shape(seen["ticker"][0], DOC_TICKER)
    assert_shape(seen["match"][0], DOC_MATCH)
    assert_shape(seen["heartbeat"][0], DOC_HEARTBEAT)
    beats = [h["time"] for h in seen["heartbeat"]]
    assert len(beats) == len(batches)  # one per whole second of event time: 36 s ... 43 s
    assert [b[17:19] for b in beats] == [f"{s:02d}" for s in range(56, 60)] + [
        "00",
        "01",
        "02",
        "03",
    ]
    tickers, matches = seen["ticker"], seen["match"]
    assert [t["trade_id"] for t in tickers] == [m["trade_id"] for m in matches]
    assert [t["trade_id"] for t in tickers] == trade_seqs(u, batches, "AAPL")  # the records' seq
    seqs = [t["sequence"] for t in tickers]
    assert seqs == sorted(set(seqs))
    for t, m in zip(tickers, matches, strict=True):
        assert t["price"] == m["price"] and t["side"] != m["side"]  # taker side vs maker side
        assert float(t["low_24h"]) <= float(t["price"]) <= float(t["high_24h"])
        assert float(t["best_bid"]) < float(t["best_ask"])
        assert len(t["price"].split(".")[1]) == 2  # AAPL's tick is 0.01
    import re

    assert re.match(UUID, matches[0]["maker_order_id"])
    assert matches[0]["maker_order_id"] != matches[0]["taker_order_id"]


def test_session_statistics_reset_at_open() -> None:
    enc, s = CoinbaseEncoder(U), CoinbaseSession(U, NOW)
    ask(s, {"type": "subscribe", "product_ids": ["AAPL"], "channels": ["ticker"]})
    rows = [
        {"ts": NOW, "seq": 1, "flags": TRADE_BUY, "last": 100.0, "last_size": 10, "volume": 1010},
        {
            "ts": NOW + 1,
            "seq": 2,
            "flags": TRADE_SELL,
            "last": 99.0,
            "last_size": 5,
            "volume": 1015,
        },
        {
            "ts": NOW + 2,
            "seq": 3,
            "flags": TRADE_BUY | 8,
            "last": 105.0,
            "last_size": 1,
            "volume": 1016,
        },
    ]
    out = [orjson.loads(f.data) for f in s.deliver(enc.encode(records(*rows), NOW + 3))]
    assert [(t["open_24h"], t["low_24h"], t["high_24h"], t["volume_24h"]) for t in out] == [
        ("100.00", "100.00", "100.00", "10"),
        ("100.00", "99.00", "100.00", "15"),
        ("105.00", "105.00", "105.00", "1"),  # a new session
    ]
    assert [t["side"] for t in out] == ["buy", "sell", "buy"]
    assert out[1]["volume_30d"] == "1015"


requestish = st.one_of(
    st.text(max_size=60),
    st.dictionaries(
        st.sampled_from(["type", "product_ids", "channels", "x"]),
        st.one_of(
            st.sampled_from(["subscribe", "unsubscribe", "ticker"]),
            st.lists(
                st.one_of(
                    st.sampled_from(["AAPL", "ticker", "heartbeat", "matches", "full", "BTC-USD"]),
                    st.text(max_size=10),
                    st.integers(),
                    st.none(),
                    st.fixed_dictionaries(
                        {"name": st.one_of(st.sampled_from(["ticker", "x"]), st.integers())},
                        optional={
                            "product_ids": st.one_of(st.lists(st.text(max_size=6)), st.none())
                        },
                    ),
                ),
                max_size=4,
            ),
            st.integers(),
            st.none(),
            st.booleans(),
        ),
    ).map(json.dumps),
)


@settings(deadline=None, max_examples=300)
@given(st.lists(requestish, max_size=6))
def test_any_input_gets_coinbase_replies_only(messages: list[str]) -> None:
    s = CoinbaseSession(U, NOW)
    for m in messages:
        reply = s.receive(m, NOW)
        assert reply.close is None
        for frame in reply.frames:
            answer = orjson.loads(frame.data)
            assert answer["type"] in ("subscriptions", "error")
            if answer["type"] == "error":
                assert isinstance(answer["message"], str)


def latest_of(u: Universe, batches: list[tuple[TickBatch, int]]) -> TickBatch:
    """The hub's last-value cache after `batches`: each symbol's latest record."""
    lvc = Market(u, seed=3, start_ns=START_NS).snapshot()
    for batch, _ in batches:
        lvc[batch["sym"].astype(np.intp)] = batch  # in event order: the last one wins
    return lvc


def hooked(enc: CoinbaseEncoder, lvc: TickBatch) -> CoinbaseSession:
    """A session whose `current` is the server's: the encoder over the last-value cache."""
    return CoinbaseSession(
        enc.universe, NOW, current=lambda venue, sym, ch: enc.current(lvc[sym], ch)
    )


def test_latest_ticker_and_last_match_on_subscribe() -> None:
    """As at Coinbase: right after `subscriptions`, the product's latest ticker and a
    last_match, in the reply itself; the next trades follow them with nothing lost."""
    u, batches = market_batches(seconds=4)
    enc = CoinbaseEncoder(u)
    seen = [enc.encode(batch, now) for batch, now in batches[:2]]
    s = hooked(enc, latest_of(u, batches[:2]))
    sub = {"type": "subscribe", "product_ids": ["AAPL"], "channels": ["ticker", "matches"]}
    reply = ask(s, sub)
    assert [m["type"] for m in reply] == ["subscriptions", "ticker", "last_match"]
    ticker, last_match = reply[1:]
    assert_shape(ticker, DOC_TICKER)
    assert_shape({**last_match, "type": "match"}, DOC_MATCH)
    aapl = u.index("AAPL")
    encoded = [
        orjson.loads(seen[1].encoded(e, "json")) for e in seen[1].select({aapl}, lambda *_: True)
    ]
    assert ticker == [m for m in encoded if m["type"] == "ticker"][-1]  # the latest, as sent
    assert last_match["trade_id"] == ticker["trade_id"]
    first = [orjson.loads(f.data) for f in s.deliver(enc.encode(*batches[2]))]
    trades = [m for m in first if m["type"] == "match"]
    ids = trade_seqs(u, batches[:3], "AAPL")  # trade ids are the records' seq
    assert trades and trades[0]["trade_id"] == ids[ids.index(ticker["trade_id"]) + 1]  # the next
    assert "last_match" not in [m["type"] for m in first]
    assert ask(s, sub) == reply[:1]  # already subscribed: no second ticker


def test_first_subscriber_gets_the_ticker_of_the_latest_record() -> None:
    """Before any Coinbase client, the encoder has seen nothing: the ticker at subscribe comes
    from the hub's latest record (price, size, book, sequence); side from the record's flags,
    or by the quote rule for a quote update; no ticker for a product that has not traded."""
    u = U
    enc = CoinbaseEncoder(u)
    aapl, msft = u.index("AAPL"), u.index("MSFT")
    lvc = Market(u, seed=3, start_ns=START_NS).snapshot()  # volume 0: nothing traded
    trade = {"ts": NOW, "seq": 7, "flags": TRADE_SELL, "last": 99.99, "last_size": 30}
    quote = {"ts": NOW + 5, "seq": 9, "flags": 0, "last": 100.01, "last_size": 40}
    lvc[aapl] = records({**trade, "sym": aapl, "volume": 500})[0]
    lvc[msft] = records({**quote, "sym": msft, "volume": 900})[0]
    s = hooked(enc, lvc)
    reply = ask(
        s, {"type": "subscribe", "product_ids": ["AAPL", "MSFT", "NVDA"], "channels": ["ticker"]}
    )
    assert [(m["type"], m.get("product_id")) for m in reply] == [
        ("subscriptions", None),
        ("ticker", "AAPL"),
        ("ticker", "MSFT"),
    ]
    a, m = reply[1:]
    assert_shape(a, DOC_TICKER)
    assert (a["price"], a["last_size"], a["side"], a["sequence"]) == ("99.99", "30", "sell", 7)
    assert (a["best_bid"], a["best_ask"], a["best_bid_size"]) == ("99.99", "100.01", "100")
    assert (m["price"], m["side"], m["sequence"]) == ("100.01", "buy", 9)  # at the ask: buy
    assert a["trade_id"] == 7  # the trade record's seq, as REST's trade id
    assert m["trade_id"] == 0  # a quote update: no trade seen yet to name
    first = s.deliver(enc.encode(records({**trade, "sym": aapl, "seq": 8, "volume": 530}), NOW + 9))
    assert orjson.loads(first[0].data)["trade_id"] == 8


def test_crypto_product_ids_from_the_universe() -> None:
    u = Universe.from_rows([("BTC-USD", "Bitcoin", "Crypto", 60000.0, 0.01, 1, 3.0, "stock")])
    enc, s = CoinbaseEncoder(u), CoinbaseSession(u, NOW)
    [reply] = ask(s, {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["ticker"]})
    assert reply["channels"] == [{"name": "ticker", "product_ids": ["BTC-USD"]}]
    row = {"ts": NOW, "seq": 5, "flags": TRADE_BUY, "last": 60000.5, "last_size": 2, "volume": 2}
    [frame] = s.deliver(enc.encode(records({**row, "bid": 60000.49, "ask": 60000.5}), NOW + 1))
    ticker = orjson.loads(frame.data)
    assert (ticker["product_id"], ticker["price"], ticker["best_bid"]) == (
        "BTC-USD",
        "60000.50",
        "60000.49",
    )
