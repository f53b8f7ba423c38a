"""Binance spot market streams over the simulated market: `/binance/ws`, `/binance/ws/<streams>`
and `/binance/stream?streams=a/b`.

`BinanceEncoder` turns each batch into `<symbol>@bookTicker`, `@trade`, `@aggTrade`, `@kline_1m`
(an update at most every 2 s of event time and the closed kline when the minute ends) and
`@miniTicker` (at most once per second of event time) payloads, decimals as strings, times in ms,
encoded once and shared; its depth streams (`@depth`, `@depth5|10|20`, each `[@100ms]`) come from
the server's order books (`binance_depth.py`), which a session books through `Reply.books`.
`BinanceSession` (`binance_session.py`, importable from here) is one connection. Sans-IO.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from tickwire.simulators.ticks import TickBatch, TickFlag
from tickwire.simulators.universe import Universe

from ._common import (
    NS_PER_MIN,
    NS_PER_MS,
    NS_PER_S,
    Entry,
    Frame,
    Shared,
    binance_name,
)
from ._sizes import BINANCE_PLACES, Sizes
from ._tape import Bar, Tape
from .binance_depth import DEPTH_CHANNELS, BinanceDepth
from .binance_session import MAX_STREAMS, METHODS, STREAM_TYPES, TICK_TYPES, BinanceSession
from .binance_ticker import BinanceStats, avg_price_payload, ticker_payload
from .books import BookNews

KLINE_EVERY_NS = 2 * NS_PER_S  # Binance pushes kline_1m updates every 2000 ms
MINI_EVERY_NS = NS_PER_S  # and the mini ticker every 1000 ms
_TRADE, _SELL, _OPEN = int(TickFlag.TRADE), int(TickFlag.SELL), int(TickFlag.OPEN)


def px(value: float) -> str:
    return f"{value:.8f}"


class BinanceEncoder:
    """Every batch's Binance payloads, built once for all Binance sessions."""

    venue = "binance"

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self._names = [binance_name(s) for s in universe.symbols]
        self._streams = [n.lower() for n in self._names]
        n = len(universe)
        self._tape = Tape(n)
        self._sizes = Sizes(universe)
        self._qtys = self._sizes.formats(BINANCE_PLACES)  # per symbol: units -> Binance quantity
        self._book: list[tuple[float, float, int, int] | None] = [None] * n
        self._next_kline = [0] * n
        self._next_mini = [0] * n
        self._stats = BinanceStats(n)
        self._codecs = {"raw": self._raw, "combined": self._combined}
        self.depth = BinanceDepth(self._names, self._qtys)

    def _raw(self, shared: Shared, entry: Entry) -> bytes:
        if entry.channel in DEPTH_CHANNELS:
            return self.depth.raw(entry)
        return orjson.dumps(self._payload(entry))

    def book_snapshot(self, sym: int, depth: int, books: Any, now_ns: int) -> list[Frame]:
        return self.depth.book_snapshot(sym, depth, books, now_ns)

    def encode_books(self, news: BookNews, now_ns: int) -> Shared:
        """The depth streams' events due at `now_ns` (see `binance_depth`)."""
        out = Shared(now_ns, self._codecs)
        self.depth.encode(news, now_ns, out)
        return out

    def _combined(self, shared: Shared, entry: Entry) -> bytes:
        stream = f"{self._streams[entry.message[0]]}@{entry.channel}"
        return b'{"stream":"%s","data":%s}' % (stream.encode(), shared.encoded(entry, "raw"))

    def _payload(self, entry: Entry) -> dict[str, Any]:
        """The Binance payload of an entry, built when a session first wants it."""
        kind, m = entry.channel, entry.message
        sym = m[0]
        name = self._names[sym]
        qty = self._qtys[sym]
        if kind == "bookTicker":
            _, seq, bid, bs, ask, asz = m
            return {
                "u": seq,
                "s": name,
                "b": px(bid),
                "B": qty(bs),
                "a": px(ask),
                "A": qty(asz),
            }
        if kind in ("trade", "aggTrade"):
            _, tid, price, size, ms, maker = m
            if kind == "trade":
                return {
                    "e": "trade",
                    "E": ms,
                    "s": name,
                    "t": tid,
                    "p": px(price),
                    "q": qty(size),
                    "T": ms,
                    "m": maker,
                    "M": True,
                }
            return {
                "e": "aggTrade",
                "E": ms,
                "s": name,
                "a": tid,
                "p": px(price),
                "q": qty(size),
                "f": tid,
                "l": tid,
                "T": ms,
                "m": maker,
                "M": True,
            }
        if kind == "kline_1m":
            return self._kline(*m)
        if kind == "ticker":
            return ticker_payload(name, m, qty, self._sizes.units[sym])
        if kind == "avgPrice":
            return avg_price_payload(name, m)
        return self._mini(*m)

    def encode(self, batch: TickBatch, now_ns: int) -> Shared:
        """Binance payloads for `batch` (event order), then klines of minutes ended by `now_ns`.

        Only the running state is updated here; payloads are built when first asked for.
        """
        out = Shared(now_ns, self._codecs)
        tape, book, push = self._tape, self._book, out.items.append
        for ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls in batch.tolist():
            if ts >= tape.minute_ns + NS_PER_MIN:
                self._closed(out, tape.advance(ts), ts)
            tape.seen(sym, last, vol, ls if fl & _TRADE else 0, bool(fl & _OPEN))
            if fl & _TRADE:
                ms = ts // NS_PER_MS
                tape.trade(sym, ts, last, ls, not fl & _SELL, seq)  # the trade id: its seq
                self._stats.trade(sym, ts, seq, last, ls, bool(fl & _OPEN))
                trade = (sym, seq, last, ls, ms, bool(fl & _SELL))  # m: the buyer was the maker
                push((sym, "trade", trade))
                push((sym, "aggTrade", trade))
                if ts >= self._next_kline[sym]:
                    self._next_kline[sym] = ts + KLINE_EVERY_NS
                    bar = tape.bars[sym]
                    push((sym, "kline_1m", (sym, replace(bar), ms, False)))  # a copy: bars move on
                if ts >= self._next_mini[sym]:
                    self._next_mini[sym] = ts + MINI_EVERY_NS
                    stats = (tape.open[sym], tape.high[sym], tape.low[sym])
                    volume = tape.volume_24h(sym, vol)
                    push((sym, "miniTicker", (sym, ms, last, volume, *stats)))
                    # @ticker and @avgPrice speak at the mini ticker's pace (Binance: 1000 ms)
                    quotes = (bid, bs, ask, asz, volume, *stats, seq, self._stats.ticker(sym))
                    push((sym, "ticker", (sym, ms, last, ls, *quotes)))
                    avg = self._stats.average(sym, ts, tape.bars.get(sym), last)
                    push((sym, "avgPrice", (sym, ms, avg, ms)))
            quote = (bid, ask, bs, asz)
            if book[sym] != quote:
                book[sym] = quote
                push((sym, "bookTicker", (sym, seq, bid, bs, ask, asz)))
        self._closed(out, tape.advance(now_ns), now_ns)
        return out

    def current(self, record: Any, channel: str) -> bytes | None:
        """Binance sends nothing at subscribe: a stream starts with its next event."""
        return None

    def _closed(self, out: Shared, bars: list[Bar], now_ns: int) -> None:
        ms = now_ns // NS_PER_MS
        for b in bars:
            self._next_kline[b.sym] = 0  # the next minute's first trade reports at once
            self._stats.closed(b)
            out.add(b.sym, "kline_1m", (b.sym, b, ms, True))

    def _kline(self, sym: int, b: Bar, ms: int, closed: bool) -> dict[str, Any]:
        start = b.start_ns // NS_PER_MS
        name = self._names[sym]
        qty, notional = self._qtys[sym], self._sizes.notional
        k = {
            "t": start,
            "T": start + 59_999,
            "s": name,
            "i": "1m",
            "f": b.first_id,
            "L": b.last_id,
            "o": px(b.open),
            "c": px(b.close),
            "h": px(b.high),
            "l": px(b.low),
            "v": qty(b.volume),
            "n": b.count,
            "x": closed,
            "q": px(notional(sym, b.notional)),
            "V": qty(b.buy_volume),
            "Q": px(notional(sym, b.buy_notional)),
            "B": "0",
        }
        return {"e": "kline", "E": ms, "s": name, "k": k}

    def _mini(
        self, sym: int, ms: int, last: float, volume: int, open_: float, high: float, low: float
    ) -> dict[str, Any]:
        return {
            "e": "24hrMiniTicker",
            "E": ms,
            "s": self._names[sym],
            "c": px(last),
            "o": px(open_),
            "h": px(high),
            "l": px(low),
            "v": self._qtys[sym](volume),
            "q": px(
                self._sizes.notional(sym, volume * last)
            ),  # approximated at the last price: the session keeps no notional
        }


__all__ = [
    "MAX_STREAMS",
    "METHODS",
    "STREAM_TYPES",
    "TICK_TYPES",
    "BinanceEncoder",
    "BinanceSession",
    "px",
]
