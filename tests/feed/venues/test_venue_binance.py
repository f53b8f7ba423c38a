"""The Binance dialect's core with plain messages: no sockets, no trio."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed.venues import HandshakeRefused, Upgrade, route
from tickwire.feed.venues._common import binance_names
from tickwire.feed.venues.binance import METHODS, BinanceEncoder, BinanceSession
from tickwire.simulators.universe import Universe

from ._shapes import TRADE_BUY, assert_shape, market_batches, records, trade_seqs

# Binance's documented examples (spot WebSocket market streams), as data.
DOC_BOOK_TICKER = {
    "u": 400900217,
    "s": "BNBUSDT",
    "b": "25.35190000",
    "B": "31.21000000",
    "a": "25.36520000",
    "A": "40.66000000",
}
DOC_TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782136,
    "m": True,
    "M": True,
}
DOC_AGG_TRADE = {
    "e": "aggTrade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "a": 12345,
    "p": "0.001",
    "q": "100",
    "f": 100,
    "l": 105,
    "T": 1672515782136,
    "m": True,
    "M": True,
}
DOC_KLINE = {
    "e": "kline",
    "E": 1672515782136,
    "s": "BNBBTC",
    "k": {
        "t": 1672515780000,
        "T": 1672515839999,
        "s": "BNBBTC",
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "0.0010",
        "c": "0.0020",
        "h": "0.0025",
        "l": "0.0015",
        "v": "1000",
        "n": 100,
        "x": False,
        "q": "1.0000",
        "V": "500",
        "Q": "0.500",
        "B": "123456",
    },
}
DOC_MINI_TICKER = {
    "e": "24hrMiniTicker",
    "E": 1672515782136,
    "s": "BNBBTC",
    "c": "0.0025",
    "o": "0.0010",
    "h": "0.0025",
    "l": "0.0010",
    "v": "10000",
    "q": "18",
}
NOW = 1_700_000_000 * 10**9
U = Universe.default()


def session(path: str = "/binance/ws", query: str = "") -> BinanceSession:
    factory = route(path)
    assert factory is not None
    s = factory(Upgrade(path, query, {}, U, (), NOW))
    assert isinstance(s, BinanceSession)
    return s


def ask(s: BinanceSession, msg: Any, now: int = NOW) -> list[Any]:
    return [orjson.loads(f.data) for f in s.receive(json.dumps(msg), now).frames]


def test_subscribe_list_unsubscribe() -> None:
    s = session()
    streams = ["aapl@bookTicker", "aapl@trade", "zzzz@trade"]
    assert ask(s, {"method": "SUBSCRIBE", "params": streams, "id": 1}) == [
        {"result": None, "id": 1}
    ]
    assert s.symbols == {U.index("AAPL")}  # zzzz: well formed, no such symbol: silent
    assert ask(s, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == [{"result": streams, "id": 3}]
    assert ask(s, {"method": "UNSUBSCRIBE", "params": ["aapl@trade"], "id": 4}) == [
        {"result": None, "id": 4}
    ]
    assert ask(s, {"method": "LIST_SUBSCRIPTIONS", "id": 5}) == [
        {"result": ["aapl@bookTicker", "zzzz@trade"], "id": 5}
    ]


def test_errors_have_binance_shapes() -> None:
    s = session()
    cases: list[tuple[Any, int]] = [
        ({"method": "SUBSCRIBE", "params": ["AAPL@trade"], "id": 1}, 2),  # upper case
        ({"method": "SUBSCRIBE", "params": ["aapl@depth"], "id": 1}, 2),
        ({"method": "SUBSCRIBE", "params": ["aapl@trade"], "id": -1}, 2),
        ({"method": "SUBSCRIBE", "params": ["aapl@trade"], "id": "x"}, 2),
        ({"method": "JUMP", "id": 1}, 2),
        ({"params": [], "id": 1}, 2),
        ({"method": "SET_PROPERTY", "params": ["colour", True], "id": 1}, 0),
        ({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1}, 1),
    ]
    for request, code in cases:
        [reply] = ask(s, request, NOW + 10**9 * cases.index((request, code)))
        assert set(reply) == {"error", "id"} and reply["error"]["code"] == code, request
        assert isinstance(reply["error"]["msg"], str)
    [bad] = [orjson.loads(f.data) for f in s.receive("{oops", NOW + 100 * 10**9).frames]
    assert bad["error"]["code"] == 3 and bad["error"]["msg"].startswith("Invalid JSON")


def test_five_messages_a_second_then_disconnect() -> None:
    s = session()
    for i in range(5):
        assert ask(s, {"method": "LIST_SUBSCRIPTIONS", "id": i}, NOW + i)[0]["id"] == i
    reply = s.receive('{"method":"LIST_SUBSCRIPTIONS","id":9}', NOW + 10**9 - 1)
    assert reply.frames == [] and reply.close is not None and reply.close.code == 1008
    fresh = session()
    for i in range(10):  # spread over 2 s: within the limit
        assert (
            fresh.receive('{"method":"LIST_SUBSCRIPTIONS","id":1}', NOW + i * 2 * 10**8).close
            is None
        )


def test_1024_streams() -> None:
    u = Universe.synthetic(300)
    names = [n for n in binance_names(u)]
    streams = [f"{n}@{k}" for n in names for k in ("trade", "aggTrade", "bookTicker", "kline_1m")]
    s = BinanceSession("/binance/ws", {}, u, NOW)
    first = {"method": "SUBSCRIBE", "params": streams[:1024], "id": 1}
    assert [orjson.loads(f.data) for f in s.receive(json.dumps(first), NOW).frames] == [
        {"result": None, "id": 1}
    ]
    more = {"method": "SUBSCRIBE", "params": streams[1024:1025], "id": 2}
    [reply] = [orjson.loads(f.data) for f in s.receive(json.dumps(more), NOW + 1).frames]
    assert reply["error"]["code"] == 2 and reply["id"] == 2
    with pytest.raises(HandshakeRefused):
        BinanceSession("/binance/stream", {"streams": ["/".join(streams[:1025])]}, u, NOW)


def test_paths() -> None:
    assert session("/binance/ws/aapl@trade/msft@bookTicker").streams == {
        "aapl@trade": None,
        "msft@bookTicker": None,
    }
    combined = session("/binance/stream", "streams=aapl@trade/msft@kline_1m")
    assert combined.combined and list(combined.streams) == ["aapl@trade", "msft@kline_1m"]
    for path in ("/binance/ws/aapl@depth20", "/binance/api/v3"):
        with pytest.raises(HandshakeRefused):
            session(path)


def test_venue_style_symbols_from_the_universe() -> None:
    u = Universe.from_rows(
        [
            ("BTC-USD", "Bitcoin", "Crypto", 60000.0, 0.01, 1, 3.0, "stock"),
            ("ETHUSDT", "Ether", "Crypto", 3000.0, 0.01, 1, 2.0, "stock"),
        ]
    )
    s = BinanceSession("/binance/ws/btcusd@trade/ethusdt@bookTicker", {}, u, NOW)
    assert s.symbols == {0, 1}
    enc = BinanceEncoder(u)
    batch = records(
        {"ts": NOW, "seq": 1, "sym": 0, "flags": TRADE_BUY, "last": 60000.5, "last_size": 2},
        {"ts": NOW + 1, "seq": 1, "sym": 1, "flags": 0, "bid": 2999.99, "ask": 3000.01},
    )
    out = [orjson.loads(f.data) for f in s.deliver(enc.encode(batch, NOW + 2))]
    assert [(m.get("e"), m["s"]) for m in out] == [("trade", "BTCUSD"), (None, "ETHUSDT")]
    assert out[0]["p"] == "60000.50000000" and out[0]["q"] == "2.00000000"
    assert out[0]["m"] is False  # buyer-initiated: the buyer was not the maker
    assert out[1]["b"] == "2999.99000000"


def test_golden_messages_from_a_real_market() -> None:
    u, batches = market_batches()
    kinds = ("bookTicker", "trade", "aggTrade", "kline_1m", "miniTicker")
    s = session("/binance/stream", "streams=" + "/".join(f"aapl@{k}" for k in kinds))
    enc = BinanceEncoder(u)
    seen: dict[str, list[Any]] = {k: [] for k in kinds}
    for batch, now in batches:
        for frame in s.deliver(enc.encode(batch, now)):
            wrapped = orjson.loads(frame.data)
            assert set(wrapped) == {"stream", "data"}
            seen[wrapped["stream"].split("@")[1]].append(wrapped["data"])
    assert_shape(seen["bookTicker"][0], DOC_BOOK_TICKER)
    assert_shape(seen["trade"][0], DOC_TRADE)
    assert_shape(seen["aggTrade"][0], DOC_AGG_TRADE)
    assert_shape(seen["kline_1m"][0], DOC_KLINE)
    assert_shape(seen["miniTicker"][0], DOC_MINI_TICKER)
    ids = [t["t"] for t in seen["trade"]]
    assert ids == trade_seqs(u, batches, "AAPL")  # a trade's id is its record's seq
    assert [a["a"] for a in seen["aggTrade"]] == ids
    updates = [b["u"] for b in seen["bookTicker"]]
    assert updates == sorted(set(updates))
    closed = [k["k"] for k in seen["kline_1m"] if k["k"]["x"]]
    assert len(closed) == 1  # the market crossed one minute boundary
    k = closed[0]
    in_minute = [t for t in seen["trade"] if k["t"] <= t["T"] <= k["T"]]
    assert k["n"] == len(in_minute) and k["f"] == in_minute[0]["t"] and k["L"] == in_minute[-1]["t"]
    assert float(k["v"]) == sum(float(t["q"]) for t in in_minute)
    assert float(k["h"]) == max(float(t["p"]) for t in in_minute)
    times = [m["E"] for m in seen["miniTicker"]]
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times))


def test_raw_and_combined_share_payload_bytes() -> None:
    u, batches = market_batches(seconds=2)
    enc = BinanceEncoder(u)
    raw = session("/binance/ws/aapl@trade")
    combined = session("/binance/stream", "streams=aapl@trade")
    shared = enc.encode(*batches[0])
    r, c = raw.deliver(shared), combined.deliver(shared)
    assert r and len(r) == len(c)
    for a, b in zip(r, c, strict=True):
        assert orjson.loads(b.data) == {"stream": "aapl@trade", "data": orjson.loads(a.data)}


def test_set_property_combined() -> None:
    s = session()
    assert ask(s, {"method": "GET_PROPERTY", "params": ["combined"], "id": 1}) == [
        {"result": False, "id": 1}
    ]
    assert ask(s, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}, NOW + 1) == [
        {"result": None, "id": 2}
    ]
    assert s.combined


requestish = st.one_of(
    st.text(max_size=60),
    st.dictionaries(
        st.sampled_from(["method", "params", "id", "x"]),
        st.one_of(
            st.sampled_from(METHODS),
            st.lists(
                st.one_of(
                    st.text(max_size=20),
                    st.sampled_from(["aapl@trade", "combined", "AAPL@trade", "x@kline_5m"]),
                    st.integers(),
                    st.booleans(),
                    st.none(),
                ),
                max_size=4,
            ),
            st.integers(),
            st.none(),
            st.floats(),
            st.booleans(),
        ),
    ).map(json.dumps),
)


@settings(deadline=None, max_examples=300)
@given(st.lists(requestish, max_size=6))
def test_any_input_gets_binance_replies_only(messages: list[str]) -> None:
    s = session()
    for i, m in enumerate(messages):
        reply = s.receive(m, NOW + i * 10**9)
        assert reply.close is None
        for frame in reply.frames:
            answer = orjson.loads(frame.data)
            assert set(answer) in ({"result", "id"}, {"error", "id"})
            if "error" in answer:
                assert answer["error"]["code"] in (0, 1, 2, 3)


def test_closed_after_24_hours() -> None:
    s = session()
    deadline = s.next_deadline()
    assert deadline == NOW + 24 * 3600 * 10**9
    assert s.timeout(deadline - 1).close is None
    close = s.timeout(deadline).close
    assert close is not None and close.code == 1000


DOC_TICKER = {
    "e": "24hrTicker",
    "E": 1672515782136,
    "s": "BNBBTC",
    "p": "0.0015",
    "P": "250.00",
    "w": "0.0018",
    "x": "0.0009",
    "c": "0.0025",
    "Q": "10",
    "b": "0.0024",
    "B": "10",
    "a": "0.0026",
    "A": "100",
    "o": "0.0010",
    "h": "0.0025",
    "l": "0.0010",
    "v": "10000",
    "q": "18",
    "O": 0,
    "C": 1672515782136,
    "F": 0,
    "L": 18150,
    "n": 18151,
}
DOC_AVG_PRICE = {
    "e": "avgPrice",
    "E": 1693907033000,
    "s": "BTCUSDT",
    "i": "5m",
    "w": "25776.86000000",
    "T": 1693907032213,
}


def test_ticker_and_avg_price_streams_from_a_real_market() -> None:
    u, batches = market_batches()
    kinds = ("trade", "ticker", "avgPrice")
    s = session("/binance/stream", "streams=" + "/".join(f"aapl@{k}" for k in kinds))
    enc = BinanceEncoder(u)
    seen: dict[str, list[Any]] = {k: [] for k in kinds}
    for batch, now in batches:
        for frame in s.deliver(enc.encode(batch, now)):
            wrapped = orjson.loads(frame.data)
            seen[wrapped["stream"].split("@")[1]].append(wrapped["data"])
    assert_shape(seen["ticker"][0], DOC_TICKER)
    assert_shape(seen["avgPrice"][0], DOC_AVG_PRICE)
    last, trades = seen["ticker"][-1], seen["trade"]
    upto = [t for t in trades if t["t"] <= last["L"]]
    assert last["n"] == len(upto) and last["F"] == trades[0]["t"]
    assert last["c"] == upto[-1]["p"] and last["Q"] == upto[-1]["q"]
    assert float(last["l"]) <= float(last["w"]) <= float(last["h"])
    notional = sum(float(t["p"]) * float(t["q"]) for t in upto)
    assert abs(float(last["q"]) - notional) < 1e-6 * notional
    avg = seen["avgPrice"][-1]
    assert float(last["l"]) <= float(avg["w"]) <= float(last["h"])
    times = [m["E"] for m in seen["ticker"]]
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times))  # Binance: every 1000 ms
