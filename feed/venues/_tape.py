"""The running per-symbol state every venue derives from tick records: the last trade id, session
statistics (open, high, low, volume) and the open minute's bar.

One `Tape` lives in each venue encoder and sees every batch once, so the bars it gives are the
same for every subscriber of that venue. A trade's id is its record's `seq`, as REST's, so it
does not depend on when the encoder started. It reads records only: no second market, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._common import NS_PER_MIN


@dataclass(slots=True)
class Bar:
    """One symbol's trades in one minute of event time (Alpaca `b`, Binance `kline_1m`)."""

    sym: int
    start_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: int = 0
    count: int = 0
    notional: float = 0.0  # sum of price * size, for VWAP and quote volume
    buy_volume: int = 0  # taker-buy base volume (Binance `V`)
    buy_notional: float = 0.0  # taker-buy quote volume (Binance `Q`)
    first_id: int = 0
    last_id: int = 0

    @property
    def vwap(self) -> float:
        return self.notional / self.volume if self.volume else self.close

    def add(self, trade_id: int, price: float, size: int, buy: bool) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += size
        self.count += 1
        self.notional += price * size
        if buy:
            self.buy_volume += size
            self.buy_notional += price * size
        self.last_id = trade_id


class Tape:
    """Per-symbol trade counters, session statistics and minute bars, fed in event order."""

    def __init__(self, n_symbols: int) -> None:
        nan = math.nan
        self.trade_ids = [0] * n_symbols  # per symbol, the last trade's id (0: none seen)
        self.open = [nan] * n_symbols  # session open price (first price seen in the session)
        self.high = [nan] * n_symbols
        self.low = [nan] * n_symbols
        self.base_volume = [0] * n_symbols  # cumulative volume when the session began
        self.last_seq = [0] * n_symbols
        self.bars: dict[int, Bar] = {}  # open bars, all in the minute starting at minute_ns
        self.minute_ns = -1

    def advance(self, ts: int) -> list[Bar]:
        """Move event time to `ts`; the bars of a minute that has ended, in symbol order."""
        minute = ts - ts % NS_PER_MIN
        if minute <= self.minute_ns:
            return []
        self.minute_ns = minute
        if not self.bars:
            return []
        closed = [self.bars[s] for s in sorted(self.bars)]
        self.bars.clear()
        return closed

    def seen(self, sym: int, last: float, volume: int, size: int, opening: bool) -> None:
        """Start a symbol's session statistics on its first record or on a session open."""
        if opening or math.isnan(self.open[sym]):
            self.open[sym] = self.high[sym] = self.low[sym] = last
            self.base_volume[sym] = volume - size

    def trade(self, sym: int, ts: int, price: float, size: int, buy: bool, tid: int) -> None:
        """Count a trade, whose id is `tid` (its record's `seq`), into the statistics and its
        minute bar."""
        self.trade_ids[sym] = tid
        if price > self.high[sym]:
            self.high[sym] = price
        if price < self.low[sym]:
            self.low[sym] = price
        bar = self.bars.get(sym)
        if bar is None:
            start = ts - ts % NS_PER_MIN
            bar = self.bars[sym] = Bar(sym, start, price, price, price, price, first_id=tid)
        bar.add(tid, price, size, buy)

    def volume_24h(self, sym: int, volume: int) -> int:
        return volume - self.base_volume[sym]
