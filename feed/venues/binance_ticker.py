"""Binance's `<s>@ticker` (`24hrTicker`) and `<s>@avgPrice` (`avgPrice`) payloads, from the
Binance encoder's tape: what they need beyond it (each session's first trade id, trade count and
quote volume, and the last five minutes' bars for the average price) is kept here, fed in event
order. Sans-IO: plain arithmetic, no clock of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ._common import NS_PER_MIN, NS_PER_MS
from ._tape import Bar

AVG_MINUTES = 5  # Binance's average price is over the last 5 minutes


def px(value: float) -> str:
    return f"{value:.8f}"


class BinanceStats:
    """Per symbol: its session's first trade id, trade count, quote volume and start, and its
    closed minute bars of the last `AVG_MINUTES`."""

    def __init__(self, n: int) -> None:
        self.first_id = [0] * n
        self.count = [0] * n
        self.notional = [0.0] * n  # price x size units, this session
        self.open_ms = [0] * n
        self.minutes: list[deque[tuple[int, float, int]]] = [
            deque(maxlen=AVG_MINUTES) for _ in range(n)
        ]

    def trade(self, sym: int, ts: int, tid: int, price: float, size: int, opening: bool) -> None:
        if opening or not self.count[sym]:
            self.first_id[sym], self.count[sym], self.notional[sym] = tid, 0, 0.0
            self.open_ms[sym] = ts // NS_PER_MS
        self.count[sym] += 1
        self.notional[sym] += price * size

    def closed(self, bar: Bar) -> None:
        self.minutes[bar.sym].append((bar.start_ns, bar.notional, bar.volume))

    def average(self, sym: int, now_ns: int, current: Bar | None, last: float) -> float:
        """The volume-weighted price of the last 5 minutes (the open bar included)."""
        since = now_ns - AVG_MINUTES * NS_PER_MIN
        notional = volume = 0.0
        for start, n, v in self.minutes[sym]:
            if start >= since:
                notional, volume = notional + n, volume + v
        if current is not None:
            notional, volume = notional + current.notional, volume + current.volume
        return notional / volume if volume else last

    def ticker(self, sym: int) -> tuple[int, int, float, int]:
        return self.first_id[sym], self.count[sym], self.notional[sym], self.open_ms[sym]


def ticker_payload(
    name: str, m: tuple[Any, ...], qty: Callable[[int], str], unit: float
) -> dict[str, Any]:
    """A `24hrTicker` from the content the encoder pushed (see `BinanceEncoder.encode`)."""
    _, ms, last, ls, bid, bs, ask, asz, volume, open_, high, low, tid, stats = m
    first_id, count, notional, open_ms = stats
    change = last - open_
    return {
        "e": "24hrTicker",
        "E": ms,
        "s": name,
        "p": px(change),
        "P": f"{100 * change / open_:.3f}" if open_ else "0.000",
        "w": px(notional / volume if volume else last),
        "x": px(open_),
        "c": px(last),
        "Q": qty(ls),
        "b": px(bid),
        "B": qty(bs),
        "a": px(ask),
        "A": qty(asz),
        "o": px(open_),
        "h": px(high),
        "l": px(low),
        "v": qty(volume),
        "q": px(notional * unit),
        "O": max(open_ms, ms - 86_400_000),
        "C": ms,
        "F": first_id,
        "L": tid,
        "n": count,
    }


def avg_price_payload(name: str, m: tuple[Any, ...]) -> dict[str, Any]:
    _, ms, price, trade_ms = m
    return {
        "e": "avgPrice",
        "E": ms,
        "s": name,
        "i": f"{AVG_MINUTES}m",
        "w": px(price),
        "T": trade_ms,
    }
