"""Kraken WebSocket v2's data messages for every batch, built once for all Kraken sessions.

Each trade record becomes a `trade` update (`{"channel":"trade","type":"update","data":[{symbol,
side, price, qty, ord_type, trade_id, timestamp}]}`, the side the taker's) and a `ticker` update
(`event_trigger: trades`, Kraken's default); each change of a symbol's best bid or ask or their
sizes a `ticker` update for `event_trigger: bbo`. A ticker carries the best bid and ask with
their quantities, `last`, and the session's `volume`, `vwap`, `low`, `high`, `change` and
`change_pct` (from the session's open, or the first record this encoder saw). `current` builds
the snapshot a subscribe gets from a symbol's latest record. Prices and quantities are JSON
numbers (quantities the asset's: 0.0021 BTC), times RFC 3339 in microseconds, symbols Kraken's
`BASE/QUOTE`. The `book` channel's messages are `kraken_book.py`'s (`book_snapshot`,
`encode_books`: a `books.BookCodec`). Sans-IO: no trio, no sockets, no clock of its own.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from tickwire.feed.hub.books import Books
from tickwire.simulators.ticks import TickBatch, TickFlag
from tickwire.simulators.universe import Universe

from ._common import Clock, Entry, Frame, Shared
from ._sizes import Sizes
from ._tape import Tape
from .books import BookNews
from .kraken_book import KrakenBooks

_TRADE, _BUY, _OPEN = int(TickFlag.TRADE), int(TickFlag.BUY), int(TickFlag.OPEN)
# The entries' channels in a `Shared`: a subscription's channel and parameters pick one of them
TRADE, TICKER, TICKER_BBO = "trade", "ticker", "ticker_bbo"


def kraken_names(universe: Universe) -> dict[str, int]:
    """Every symbol by Kraken's name, `BASE/QUOTE` (`BTC/USD`, `AAPL/USD`), to its id."""
    pairs = zip(universe.bases, universe.quotes, strict=True)
    return {f"{base}/{quote}": i for i, (base, quote) in enumerate(pairs)}


class KrakenEncoder:
    """Every batch's Kraken messages, built once for all Kraken sessions."""

    venue = "kraken"

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.names = list(kraken_names(universe))
        self._tape = Tape(len(universe))
        self._clock = Clock()
        self._sizes = Sizes(universe)
        n = len(universe)
        self._notional = [0.0] * n  # the session's sum of price x size units, for its VWAP
        self._units = [0] * n  # the session's size units traded
        self._book: list[tuple[float, float, int, int] | None] = [None] * n
        self._last_trade: list[tuple[Any, ...] | None] = [None] * n
        self._codecs = {"json": self._json}
        self.books = KrakenBooks(universe)

    # ------------------------------------------------------------------ books (books.BookCodec)

    def book_snapshot(self, sym: int, depth: int, books: Books, now_ns: int) -> list[Frame]:
        return self.books.snapshot(sym, depth, books, now_ns)

    def encode_books(self, news: BookNews, now_ns: int) -> Shared:
        return self.books.updates(news.depth, news.booked.tolist(), news.books, now_ns)

    # ------------------------------------------------------------------ messages

    def _number(self, sym: int, units: int) -> float:
        """A quantity in the asset, as Kraken writes every quantity: a JSON float."""
        return float(self._sizes.number(sym, units))

    def _json(self, shared: Shared, entry: Entry) -> bytes:
        return orjson.dumps(self.message(entry.channel, entry.message, "update"))

    def message(self, channel: str, content: tuple[Any, ...], kind: str) -> dict[str, Any]:
        """The whole message of one entry (`kind` "update" or "snapshot")."""
        if channel == TRADE:
            return {"channel": "trade", "type": kind, "data": [self._trade(content)]}
        return {"channel": "ticker", "type": kind, "data": [self._ticker(content)]}

    def _trade(self, content: tuple[Any, ...]) -> dict[str, Any]:
        sym, tid, price, size, buy, ts = content
        return {
            "symbol": self.names[sym],
            "side": "buy" if buy else "sell",
            "price": price,
            "qty": self._number(sym, size),
            "ord_type": "market",  # the taker's: the simulated market's trades take the book
            "trade_id": tid,
            "timestamp": self._clock.us(ts),
        }

    def _ticker(self, content: tuple[Any, ...]) -> dict[str, Any]:
        sym, bid, bs, ask, asz, last, stats, ts = content
        open_, high, low, volume, vwap = stats
        number = self._number
        change = last - open_
        return {
            "symbol": self.names[sym],
            "bid": bid,
            "bid_qty": number(sym, bs),
            "ask": ask,
            "ask_qty": number(sym, asz),
            "last": last,
            "volume": number(sym, volume),
            "vwap": round(vwap, 8),
            "low": low,
            "high": high,
            "change": round(change, 10),
            "change_pct": round(100 * change / open_, 2) if open_ else 0.0,
            "timestamp": self._clock.us(ts),
        }

    # ------------------------------------------------------------------ state

    def _stats(self, sym: int, vol: int, last: float) -> tuple[float, float, float, int, float]:
        """The session's open, high, low, volume (size units) and VWAP."""
        tape, units = self._tape, self._units[sym]
        vwap = self._notional[sym] / units if units else last
        return tape.open[sym], tape.high[sym], tape.low[sym], tape.volume_24h(sym, vol), vwap

    def _seen(self, sym: int, last: float, vol: int, size: int, opening: bool) -> None:
        tape = self._tape
        if opening or math.isnan(tape.open[sym]):
            self._units[sym], self._notional[sym] = 0, 0.0
        tape.seen(sym, last, vol, size, opening)

    def encode(self, batch: TickBatch, now_ns: int) -> Shared:
        """Kraken messages for `batch`, in event order; built when a session first asks."""
        out = Shared(now_ns, self._codecs)
        tape, book, push = self._tape, self._book, out.items.append
        for ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls in batch.tolist():
            self._seen(sym, last, vol, ls if fl & _TRADE else 0, bool(fl & _OPEN))
            quote = (bid, ask, bs, asz)
            if fl & _TRADE:
                buy = bool(fl & _BUY)
                tape.trade(sym, ts, last, ls, buy, seq)  # the trade id: its record's seq
                self._units[sym] += ls
                self._notional[sym] += last * ls
                trade = self._last_trade[sym] = (sym, seq, last, ls, buy, ts)
                push((sym, TRADE, trade))
                push((sym, TICKER, (sym, bid, bs, ask, asz, last, self._stats(sym, vol, last), ts)))
            if book[sym] != quote:
                book[sym] = quote
                push(
                    (
                        sym,
                        TICKER_BBO,
                        (sym, bid, bs, ask, asz, last, self._stats(sym, vol, last), ts),
                    )
                )
        return out

    def current(self, record: Any, channel: str) -> bytes | None:
        """The snapshot a subscribe to `channel` gets: the ticker from the symbol's latest
        record (the hub's last-value cache), or its last trade (the record's, if it is one,
        else the last this encoder saw; `data` empty before any)."""
        ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls = record.tolist()
        if channel == TRADE:
            trade = self._last_trade[sym]
            if fl & _TRADE and (trade is None or trade[1] < seq):  # newer than any seen
                trade = (sym, seq, last, ls, bool(fl & _BUY), ts)
            data = [] if trade is None else [self._trade(trade)]
            return orjson.dumps({"channel": "trade", "type": "snapshot", "data": data})
        if channel != TICKER:
            return None
        self._seen(sym, last, vol, 0, False)  # the session statistics start here if unseen
        content = (sym, bid, bs, ask, asz, last, self._stats(sym, vol, last), ts)
        return orjson.dumps(self.message(TICKER, content, "snapshot"))
