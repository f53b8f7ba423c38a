"""The venues' limits on what a client sends, sans-IO: one mechanism (`MessageRate`, Binance's
sliding window) for Binance's, Coinbase's and Alpaca's request limits and their symbol budgets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tickwire.feed.venues import alpaca, binance, coinbase
from tickwire.feed.venues._common import NS_PER_S, MessageRate
from tickwire.simulators.universe import Universe

NOW = 1_700_000_000 * 10**9
U = Universe.default()


def test_message_rate_is_a_sliding_window_with_costs() -> None:
    rate = MessageRate(5)
    assert all(rate.allow(NOW + i) for i in range(5))
    assert not rate.allow(NOW + 10)  # the 6th within the second
    assert rate.allow(NOW + NS_PER_S)  # the first has left the window
    big = MessageRate(100)
    assert big.allow(NOW, 60) and not big.allow(NOW, 60)  # 120 > 100: refused, not charged
    assert big.allow(NOW, 40)
    huge = MessageRate(100)
    assert huge.allow(NOW, 10_000)  # more than the limit: charged the limit, once
    assert not huge.allow(NOW + 1)
    with pytest.raises(ValueError):
        MessageRate(0)


def _coinbase() -> coinbase.CoinbaseSession:
    return coinbase.CoinbaseSession(U, NOW)


def _sub(products: list[str]) -> bytes:
    return orjson.dumps({"type": "subscribe", "product_ids": products, "channels": ["ticker"]})


def test_coinbase_eight_a_second_in_bursts_of_twenty() -> None:
    s = _coinbase()
    one = _sub([U.symbols[0]])
    for i in range(20):  # a burst of 20 passes
        assert s.receive(one, NOW + i).close is None
    reply = s.receive(one, NOW + 20)
    assert reply.close is not None and reply.close.code == 1008
    assert orjson.loads(reply.frames[0].data)["message"] == "rate limit exceeded"
    s = _coinbase()
    step = NS_PER_S // 8  # 8 a second, for ever
    assert all(s.receive(one, NOW + i * step).close is None for i in range(100))


def test_coinbase_charges_by_products() -> None:
    s = _coinbase()
    many = _sub(list(U.symbols) * (coinbase.MAX_PRODUCTS_PER_S // len(U) + 1))
    assert s.receive(many, NOW).close is None  # the largest request passes on its own
    reply = s.receive(_sub([U.symbols[0]]), NOW + 1)  # but the second's budget is spent
    assert reply.close is not None and reply.close.code == 1008


def _alpaca() -> alpaca.AlpacaSession:
    s = alpaca.AlpacaSession("iex", {}, U, (), NOW)
    s.opened(NOW)
    s.receive(orjson.dumps({"action": "auth", "key": "k", "secret": "s"}), NOW)
    return s


def _alpaca_sub(symbols: list[str]) -> bytes:
    return orjson.dumps({"action": "subscribe", "trades": symbols})


def test_alpaca_ten_messages_a_second() -> None:
    s = _alpaca()  # the auth was the first
    replies = [s.receive(_alpaca_sub(["AAPL"]), NOW + i) for i in range(1, 11)]
    assert all(r.close is None for r in replies[:9])
    assert replies[9].close is not None and replies[9].close.code == 1008


def test_alpaca_charges_by_symbols() -> None:
    s = _alpaca()
    names = [f"S{i}" for i in range(alpaca.MAX_SYMBOLS_PER_S)]
    assert s.receive(_alpaca_sub(names), NOW + 1).close is None
    reply = s.receive(_alpaca_sub(["AAPL"]), NOW + 2)
    assert reply.close is not None and reply.close.code == 1008
    s = _alpaca()
    assert all(s.receive(_alpaca_sub(["*"]), NOW + i * NS_PER_S).close is None for i in range(30))


def _binance_ask(s: binance.BinanceSession, msg: Any, now: int) -> Any:
    return s.receive(orjson.dumps(msg), now)


def test_binance_charges_by_streams_named() -> None:
    s = binance.BinanceSession("/binance/ws", {}, U, NOW)
    names = [f"x{i}@trade" for i in range(1000)]
    for i in range(2):  # 2000 streams named within a second: fine
        reply = _binance_ask(s, {"method": "UNSUBSCRIBE", "params": names, "id": i}, NOW + i)
        assert reply.close is None
    reply = _binance_ask(s, {"method": "UNSUBSCRIBE", "params": names, "id": 3}, NOW + 3)
    assert reply.close is not None and reply.close.reason == "Too many requests"
