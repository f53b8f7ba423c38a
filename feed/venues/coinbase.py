"""The Coinbase Exchange websocket feed over the simulated market: `/coinbase`.

`CoinbaseEncoder` turns each batch into `ticker` and `match` messages (one each per trade) and a
`heartbeat` per product per second of event time, decimals as strings, RFC 3339 times in
microseconds, encoded once and shared; the order book channels `level2` and `level2_batch` are
`coinbase_book.py`'s (a `books.BookCodec`). `level2` needs a signed subscribe at Coinbase: any
well-formed `key`, `signature`, `passphrase` and `timestamp` pass, and with server tokens the
key must be one. `CoinbaseSession` is one connection: `subscribe` /
`unsubscribe` with product ids and channels (names or `{"name", "product_ids"}` objects), the
`subscriptions` reply, then each new product's current `ticker` and `last_match` (built from
the hub's latest record by the server's `services.current`),
`{"type": "error"}` for bad requests and the 5 s subscribe deadline. The `status` channel
carries a market scenario's halts (`coinbase_status`).
Sans-IO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from tickwire.feed.hub.books import Books
from tickwire.simulators.ticks import TickBatch, TickFlag
from tickwire.simulators.universe import Universe

from ._common import (
    NS_PER_S,
    Clock,
    Close,
    Entry,
    Frame,
    MessageRate,
    Reply,
    Shared,
    describe,
    price_formats,
)
from ._sizes import Sizes
from ._tape import Tape
from .books import BookNews
from .coinbase_book import BOOK_CHANNELS, LEVEL2, LEVEL2_BATCH, CoinbaseBooks, refusal
from .coinbase_status import CHANNEL as STATUS
from .coinbase_status import encoded as status_encoded

CHANNELS = ("ticker", "matches", "heartbeat", STATUS, LEVEL2, LEVEL2_BATCH)
# Channels of the real feed that the simulated market has no data for (no orders).
UNSUPPORTED = ("full", "level3", "auctionfeed", "rfq_matches", "balance")
SUBSCRIBE_DEADLINE_NS = 5 * NS_PER_S
# Coinbase's documented limit: 8 requests a second, in bursts of up to 20, as a window of 20
# requests over 2.5 s (8 a second on average, 20 at once). Past it: an error, then a close.
REQUESTS_BURST = 20
REQUESTS_WINDOW_NS = 5 * NS_PER_S // 2
# Products named per second (each channel's list counts): a subscribe of 5000 products costs
# 5000, so request storms within the request limit cannot keep the server busy.
MAX_PRODUCTS_PER_S = 5000
_TRADE, _BUY, _OPEN = int(TickFlag.TRADE), int(TickFlag.BUY), int(TickFlag.OPEN)


def _order_id(sym: int, trade_id: int, taker: bool) -> str:
    """A stable, unique, UUID-shaped order id for one side of a simulated match."""
    high, low = trade_id >> 48 & 0xFFFF, trade_id & 0xFFFFFFFFFFFF
    return f"{sym:08x}-{high:04x}-4{int(taker):03x}-8000-{low:012x}"


class CoinbaseEncoder:
    """Every batch's Coinbase messages, built once for all Coinbase sessions."""

    venue = "coinbase"

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self._tape = Tape(len(universe))
        self._clock = Clock()
        self._fmt = price_formats(universe)
        self._sizes = Sizes(universe).formats()  # per symbol: units -> the asset's quantity
        self._second = -1  # last whole second of event time that had its heartbeats
        self._codecs = {"json": self._json}
        self._last: dict[int, tuple[Any, ...]] = {}  # each symbol's last trade
        self.books = CoinbaseBooks(universe)

    def book_snapshot(self, sym: int, depth: int, books: Books, now_ns: int) -> list[Frame]:
        """A level2 subscriber's snapshot (`books.BookCodec`)."""
        return self.books.snapshot(sym, books, now_ns)

    def encode_books(self, news: BookNews, now_ns: int) -> Shared:
        """The level2 and level2_batch updates of a take (`books.BookCodec`)."""
        return self.books.updates(news.take, news.booked.tolist(), news.books, now_ns)

    def current(self, record: Any, channel: str) -> bytes | None:
        """The product's ticker or `last_match` now, from its latest record (the hub's last-value
        cache), as Coinbase sends them at subscribe; None before the product's first trade.

        If the last trade this encoder saw is still the product's latest (same cumulative
        volume), that trade's own message; else one built from the record: its `last` and
        `last_size`, its book, its `seq` as the trade id (for a quote update, the last trade id
        this encoder saw, 0 if none), `side` from the record's flags or, for a quote update,
        the quote rule (last at or above the mid: the buyer took it).
        """
        if channel not in ("ticker", "matches"):
            return None
        ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls = record.tolist()
        if vol == 0:
            return None  # no trade yet: nothing to report
        trade = self._last.get(sym)
        if trade is None or trade[7][4] != vol:
            tape = self._tape
            tape.seen(sym, last, vol, 0, False)  # the session statistics start here if unseen
            buy = bool(fl & _BUY) if fl & _TRADE else last >= (bid + ask) / 2
            stats = (tape.open[sym], tape.high[sym], tape.low[sym], tape.volume_24h(sym, vol), vol)
            tid = seq if fl & _TRADE else tape.trade_ids[sym]  # a quote: the last trade seen
            trade = (sym, seq, tid, ts, buy, last, ls, stats, (bid, bs, ask, asz))
        message = self._message(Entry(-1, channel, trade))
        if channel == "matches":
            message["type"] = "last_match"
        return orjson.dumps(message)

    def current_status(self, sym: int, now: tuple[int, int, int] | None) -> bytes:
        """The product's `status` message at subscribe: `now` (status, reason, ts) while a
        scenario halts it, else None."""
        halted, reason = (True, now[1]) if now else (False, 0)
        tick = self._fmt[sym].format(self.universe.tick_size[sym])
        return status_encoded(self.universe, sym, halted, reason, quote_increment=tick)

    def encode_statuses(self, changes: Iterable[tuple[int, int, int, int]], now_ns: int) -> Shared:
        """`status` messages for trading status changes, each (ts, sym, status, reason) as in
        `simulators.scenario.STATUS_DTYPE`."""
        out = Shared(now_ns, self._codecs)
        for _, sym, status, reason in changes:
            out.add(sym, STATUS, (sym, status, reason))
        return out

    def _json(self, shared: Shared, entry: Entry) -> bytes:
        if entry.channel == STATUS:
            sym, status, reason = entry.message
            return self.current_status(sym, (status, reason, 0) if status else None)
        return orjson.dumps(self._message(entry))

    def _message(self, entry: Entry) -> dict[str, Any]:
        """The Coinbase message of an entry, built when a session first wants it."""
        names, fmt, us = self.universe.symbols, self._fmt, self._clock.us
        if entry.channel == "heartbeat":
            sym, seq, tid, at = entry.message
            return {
                "type": "heartbeat",
                "sequence": seq,
                "last_trade_id": tid,
                "product_id": names[sym],
                "time": us(at),
            }
        sym, seq, tid, ts, buy, price, size, stats, book = entry.message
        f, text = fmt[sym], self._sizes[sym]
        if entry.channel == "matches":
            return {
                "type": "match",
                "trade_id": tid,
                "maker_order_id": _order_id(sym, tid, False),
                "taker_order_id": _order_id(sym, tid, True),
                "side": "sell" if buy else "buy",  # the maker's side, as Coinbase reports it
                "size": text(size),
                "price": f.format(price),
                "product_id": names[sym],
                "sequence": seq,
                "time": us(ts),
            }
        open_, high, low, volume, total = stats
        bid, bs, ask, asz = book
        return {
            "type": "ticker",
            "sequence": seq,
            "product_id": names[sym],
            "price": f.format(price),
            "open_24h": f.format(open_),
            "volume_24h": text(volume),
            "low_24h": f.format(low),
            "high_24h": f.format(high),
            "volume_30d": text(total),
            "best_bid": f.format(bid),
            "best_bid_size": text(bs),
            "best_ask": f.format(ask),
            "best_ask_size": text(asz),
            "side": "buy" if buy else "sell",  # the taker's side
            "time": us(ts),
            "trade_id": tid,
            "last_size": text(size),
        }

    def encode(self, batch: TickBatch, now_ns: int) -> Shared:
        """Coinbase messages for `batch` (event order), then heartbeats due by `now_ns`.

        Only the running state is updated here; messages are built when first asked for.
        """
        out = Shared(now_ns, self._codecs)
        tape, push, latest = self._tape, out.items.append, self._last
        for ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls in batch.tolist():
            if ts // NS_PER_S > self._second:
                self._heartbeats(out, ts)
            tape.seen(sym, last, vol, ls if fl & _TRADE else 0, bool(fl & _OPEN))
            tape.last_seq[sym] = seq
            if not fl & _TRADE:
                continue
            buy = bool(fl & _BUY)
            tid = seq  # a trade's id is its record's seq, as REST's
            tape.trade(sym, ts, last, ls, buy, tid)
            stats = (tape.open[sym], tape.high[sym], tape.low[sym], tape.volume_24h(sym, vol), vol)
            trade = (sym, seq, tid, ts, buy, last, ls, stats, (bid, bs, ask, asz))
            push((sym, "ticker", trade))
            push((sym, "matches", trade))
            latest[sym] = trade
        self._heartbeats(out, now_ns)
        return out

    def _heartbeats(self, out: Shared, ts: int) -> None:
        second = ts // NS_PER_S
        if second <= self._second:
            return
        first = self._second < 0
        self._second = second
        if first:
            return  # the first second starts the count; its heartbeat comes when it ends
        tape, at = self._tape, second * NS_PER_S
        seqs, tids = tape.last_seq, tape.trade_ids
        for sym in range(len(self.universe)):
            out.add(sym, "heartbeat", (sym, seqs[sym], tids[sym], at))


def _error(message: str, reason: str | None = None) -> Reply:
    body: dict[str, str] = {"type": "error", "message": message}
    if reason is not None:
        body["reason"] = reason
    return Reply([Frame(orjson.dumps(body))])


def _too_many(reason: str) -> Reply:
    reply = _error("rate limit exceeded", reason)
    reply.close = Close(1008, "rate limit exceeded")
    return reply


class CoinbaseSession:
    """One Coinbase feed connection: its channels per product and the subscribe deadline."""

    venue = "coinbase"
    binary = False

    def __init__(
        self,
        universe: Universe,
        now_ns: int,
        *,
        current: Callable[[str, int, str], bytes | None] | None = None,
        tokens: Sequence[str] = (),
        book_depth: int = 0,
    ) -> None:
        """`tokens`: the server's (a level2 subscribe's `key` must be one); `book_depth`: the
        server's order book depth (0: it keeps no books, level2 is refused)."""
        self.universe = universe
        self._tokens = tuple(tokens)
        self.book_depth = book_depth
        self._books: dict[int, int] = {}  # what the level2 channels book: symbol id -> depth
        self._current = current  # (venue, symbol id, channel): the message to send at subscribe
        self.channels: dict[str, dict[str, None]] = {c: {} for c in CHANNELS}
        self._wanted: dict[int, set[str]] = {}
        self._syms: set[int] = set()
        self._key: frozenset[tuple[int, frozenset[str]]] = frozenset()
        self._deadline: int | None = now_ns + SUBSCRIBE_DEADLINE_NS
        self._requests = MessageRate(REQUESTS_BURST, REQUESTS_WINDOW_NS)
        self._products_named = MessageRate(MAX_PRODUCTS_PER_S)

    @property
    def symbols(self) -> frozenset[int]:
        return frozenset(self._wanted)

    def opened(self, now_ns: int) -> Reply:
        return Reply()

    def receive(self, data: str | bytes, now_ns: int) -> Reply:
        """One client message in; Coinbase's answer out. Never raises for what a client sends."""
        if not self._requests.allow(now_ns):
            return _too_many("more than 8 requests a second (bursts of 20)")
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            return _error("Malformed JSON")
        if not isinstance(msg, dict):
            return _error("Failed to parse request", "a request is a JSON object")
        kind = msg.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            return _error("Failed to parse request", f"unknown type {describe(kind)}")
        failed = "Failed to subscribe" if kind == "subscribe" else "Failed to unsubscribe"
        top = msg.get("product_ids", [])
        if not isinstance(top, list) or not all(isinstance(p, str) for p in top):
            return _error(failed, "product_ids must be a list of product ids")
        channels = msg.get("channels")
        if not isinstance(channels, list) or not channels:
            return _error(failed, "channels must be a non-empty list")
        named = len(top) * len(channels) + sum(
            len(ch["product_ids"])
            for ch in channels
            if isinstance(ch, dict) and isinstance(ch.get("product_ids"), list)
        )
        if not self._products_named.allow(now_ns, named):
            return _too_many(f"more than {MAX_PRODUCTS_PER_S} product ids a second")
        plan: list[tuple[str, list[str], bool]] = []  # channel, products, named alone
        for ch in channels:
            if isinstance(ch, str):
                name, products, alone = ch, top, not top
            elif isinstance(ch, dict) and isinstance(ch.get("name"), str):
                name, products, alone = ch["name"], ch.get("product_ids", top), False
                if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
                    return _error(failed, f"product_ids of {describe(name)} must be a list")
            else:
                return _error(failed, f"{describe(ch)} is not a valid channel")
            if name in UNSUPPORTED:
                return _error(failed, f"channel {name} is not supported by the simulated market")
            if name not in CHANNELS:
                return _error(failed, f"{describe(name)} is not a valid channel")
            for p in products:
                if p not in self.universe:
                    return _error(failed, f"{describe(p)} is not a valid product")
            if kind == "subscribe" and not products:
                return _error(failed, f"no product ids for channel {name}")
            if kind == "subscribe" and name in BOOK_CHANNELS:
                refused = refusal(name, msg, self.book_depth, self._tokens)
                if refused is not None:
                    return _error(*refused)
            plan.append((name, products, alone))
        first: list[tuple[int, str]] = []  # (symbol id, channel) new to this connection
        for name, products, alone in plan:
            subs = self.channels[name]
            if kind == "subscribe":
                if name != "heartbeat":  # Coinbase first sends the latest ticker / last_match
                    new = [p for p in products if p not in subs]
                    first += [(self.universe.index(p), name) for p in dict.fromkeys(new)]
                subs.update(dict.fromkeys(products))
            elif alone:
                subs.clear()
            else:
                for p in products:
                    subs.pop(p, None)
        if kind == "subscribe":
            self._deadline = None
        self._reindex()
        reply = Reply([self._subscriptions()], symbols=self.symbols)
        books = {
            self.universe.index(p): self.book_depth for c in BOOK_CHANNELS for p in self.channels[c]
        }
        if books != self._books:
            self._books = reply.books = books
        if self._current is not None:
            for sym, name in first:
                message = self._current(self.venue, sym, name)
                if message is not None:
                    reply.frames.append(Frame(message))
        return reply

    def _reindex(self) -> None:
        wanted: dict[int, set[str]] = {}
        for name, products in self.channels.items():
            for p in products:
                wanted.setdefault(self.universe.index(p), set()).add(name)
        self._wanted = wanted
        self._syms = set(wanted)
        self._key = frozenset((s, frozenset(k)) for s, k in wanted.items())

    def _subscriptions(self) -> Frame:
        listed = [{"name": n, "product_ids": list(p)} for n, p in self.channels.items() if p]
        return Frame(orjson.dumps({"type": "subscriptions", "channels": listed}))

    def _wants(self, sym: int, channel: str) -> bool:
        return channel in self._wanted[sym]

    def deliver(self, shared: Shared) -> list[Frame]:
        """One frame per message of this session's channels and products, in event order."""
        if not self._wanted:
            return []
        return shared.memo(self._key, lambda: self._build(shared))

    def _build(self, shared: Shared) -> list[Frame]:
        return [Frame(shared.encoded(e, "json")) for e in shared.select(self._syms, self._wants)]

    def next_deadline(self) -> int | None:
        """The subscribe deadline while no subscribe has arrived, else None."""
        return self._deadline

    def timeout(self, now_ns: int) -> Reply:
        if self._deadline is None or now_ns < self._deadline:
            return Reply()
        self._deadline = None
        reply = _error("Failed to subscribe", "no subscribe message within 5 seconds")
        reply.close = Close(1008, "subscribe timeout")
        return reply

    def overflow(self) -> Reply:
        """Coinbase drops a connection that cannot keep up."""
        return Reply(close=Close(1008, "slow reader"))

    def closed(self) -> None:
        """Nothing shared to give back."""
