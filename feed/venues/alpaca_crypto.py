"""Alpaca crypto market data (v1beta3) over the simulated market: `/alpaca/v1beta3/crypto/us`.

The same protocol as Alpaca's stock stream (`alpaca.py`: `connected`, `auth`, subscribe, the
error objects, the connection limit per key, JSON or MessagePack), with crypto's messages:
trades `{"T":"t","S":"BTC/USD","p","s","t","i","tks"}` (`tks` the taker's side, B or S),
quotes `{"T":"q","S","bp","bs","ap","as","t"}` and minute bars `{"T":"b","S","o","h","l","c",
"v","t","n","vw"}`, sizes as the asset's quantity (0.0021 BTC). Symbols are Alpaca's `BASE/QUOTE`
(`BTC/USD` for the universe's `BTC-USD`); only the universe's crypto pairs are served ("*" is all
of them). `updatedBars` and `dailyBars` are acknowledged and stay silent, as on the stock feed.
`orderbooks` (on a server with books; else Alpaca's 410 saying how to start one) are
`{"T":"o","S","t","b":[{"p","s"}],"a":[...]}`: first the pair's full book with `"r": true`,
then its changed levels (size 0 removes), from the server's books through the venue book
plumbing. Sans-IO: no trio, no sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tickwire.feed.hub.books import Books, BookTake
from tickwire.simulators.universe import Universe

from ._alpaca_encoder import AlpacaEncoder
from ._common import Entry, Frame, Reply, Shared, decimals_of
from .alpaca import AlpacaSession
from .books import BOOKS_OFF, BookNews

FEEDS = ("us",)
ORDERBOOKS = "orderbooks"
DATA_CHANNELS = ("trades", "quotes", "bars", ORDERBOOKS)
SILENT_CHANNELS = ("updatedBars", "dailyBars")  # the simulated market makes no late trades


def alpaca_names(universe: Universe) -> dict[str, int]:
    """The universe's crypto pairs by Alpaca's names (`BTC/USD`), to their symbol ids."""
    return {
        f"{universe.bases[i]}/{universe.quotes[i]}": i
        for i, kind in enumerate(universe.kinds)
        if kind == "crypto"
    }


class AlpacaCryptoSession(AlpacaSession):
    """One connection to Alpaca's crypto stream: `AlpacaSession` with crypto's channels and
    `BASE/QUOTE` symbols."""

    venue = "alpaca_crypto"
    feeds = FEEDS
    data_channels = DATA_CHANNELS
    all_channels = DATA_CHANNELS + SILENT_CHANNELS
    mirrored = ()
    other_feed_channels = ()

    def __init__(
        self,
        feed: str,
        headers: Mapping[str, str],
        universe: Universe,
        tokens: Sequence[str],
        now_ns: int,
        **options: Any,
    ) -> None:
        """As `AlpacaSession`'s; `feed` is the crypto feed ("us"), `book_depth` the server's
        order book depth (0: it keeps none, `orderbooks` is refused)."""
        self.book_depth = int(options.pop("book_depth", 0))
        self._books: dict[int, int] = {}  # what `orderbooks` books: symbol id -> depth
        super().__init__(feed, headers, universe, tokens, now_ns, **options)
        self._names = alpaca_names(universe)
        self._all_crypto = len(self._names) == len(universe)
        self.feed = f"crypto/{feed}"  # a key's stock and crypto streams are counted apart

    def _ids_of(self, names: Mapping[str, None]) -> set[int] | None:
        if "*" in names:
            return None if self._all_crypto else set(self._names.values())
        return {self._names[s] for s in names if s in self._names}

    def _subscribe(self, msg: dict[str, Any], add: bool) -> Reply:
        """As the stock stream's, and `orderbooks` books its pairs in the server's books."""
        if add and msg.get(ORDERBOOKS) and not self.book_depth:
            return Reply([self._frame({"T": "error", "code": 410, "msg": BOOKS_OFF})])
        reply = super()._subscribe(msg, add)
        ids = self._ids.get(ORDERBOOKS, set())
        wanted = set(self._names.values()) if ids is None else ids
        books = {sym: self.book_depth for sym in sorted(wanted)}
        if books != self._books:
            self._books = reply.books = books
        return reply


class AlpacaCryptoEncoder(AlpacaEncoder):
    """Every batch's Alpaca crypto messages, built once for all crypto sessions."""

    venue = "alpaca_crypto"

    def __init__(self, universe: Universe) -> None:
        super().__init__(universe)
        names = {i: name for name, i in alpaca_names(universe).items()}
        self._pairs = [names.get(i, s) for i, s in enumerate(universe.symbols)]
        self._price_scale = [10.0 ** decimals_of(float(t)) for t in universe.tick_size]
        self._resets: set[int] = set()  # symbols booked since the last take: a full book next

    def book_snapshot(self, sym: int, depth: int, books: Books, now_ns: int) -> list[Frame]:
        """`books.BookCodec`: the full book goes in the stream (`reset`), in each codec."""
        self.reset(sym)
        return []

    def encode_books(self, news: BookNews, now_ns: int) -> Shared:
        """`books.BookCodec`: the `orderbooks` messages of a take."""
        return self.orderbooks(news.take, news.booked.tolist(), news.books, now_ns)

    def orderbooks(
        self, take: BookTake, booked: Iterable[int], books: Books, now_ns: int
    ) -> Shared:
        """`orderbooks` messages of one take of the server's books: a full book (`r: true`) for
        each symbol booked since the last take (every subscriber of it starts over), then each
        other symbol's levels changed in the take, their sizes now (0 removes)."""
        out = Shared(now_ns, self._codecs)
        booked = set(booked)
        # and symbols whose changes the take lost (the server's reader resynced) start over
        resets, self._resets = (self._resets | set(take.snaps)) & booked, set()
        for sym in sorted(resets):
            (bids, asks), _, ts = books.ladder(sym, books.depth)
            out.add(sym, ORDERBOOKS, (sym, ts, bids, asks, True))
        records = take.records
        if not len(records):
            return out
        changed: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
        last_ts: dict[int, int] = {}
        for sym, side, u, size, ts in zip(
            records["sym"].tolist(),
            records["side"].tolist(),
            take.units.tolist(),
            records["size"].tolist(),
            records["ts"].tolist(),
            strict=True,
        ):
            if sym in resets or sym not in booked:
                continue
            held = changed.get(sym)
            if held is None:
                held = changed[sym] = ({}, {})
            held[side][u] = size
            last_ts[sym] = ts
        for sym, (bid_sizes, ask_sizes) in changed.items():
            content = (sym, last_ts[sym], list(bid_sizes.items()), list(ask_sizes.items()), False)
            out.add(sym, ORDERBOOKS, content)
        return out

    def reset(self, sym: int) -> None:
        """A session booked `sym`: the next take starts its subscribers over with its full book
        (in the stream, so that it is in each session's codec and before any change)."""
        self._resets.add(sym)

    def _orderbook(self, content: Any, stamp: Callable[[int], Any]) -> dict[str, Any]:
        sym, ts, bids, asks, reset = content
        scale, number = self._price_scale[sym], self._number
        message = {
            "T": "o",
            "S": self._pairs[sym],
            "t": stamp(ts),
            "b": [{"p": u / scale, "s": number(sym, z)} for u, z in bids],
            "a": [{"p": u / scale, "s": number(sym, z)} for u, z in asks],
        }
        if reset:
            message["r"] = True
        return message

    def _message(self, entry: Entry, stamp: Callable[[int], Any]) -> dict[str, Any]:
        names, number = self._pairs, self._number
        if entry.channel == ORDERBOOKS:
            return self._orderbook(entry.message, stamp)
        if entry.channel == "trades":
            sym, tid, price, size, ts, buy = entry.message
            return {
                "T": "t",
                "S": names[sym],
                "p": price,
                "s": number(sym, size),
                "t": stamp(ts),
                "i": tid,
                "tks": "B" if buy else "S",
            }
        if entry.channel == "quotes":
            sym, bid, bs, ask, asz, ts = entry.message
            return {
                "T": "q",
                "S": names[sym],
                "bp": bid,
                "bs": number(sym, bs),
                "ap": ask,
                "as": number(sym, asz),
                "t": stamp(ts),
            }
        message = super()._message(entry, stamp)  # a bar (crypto has no trading statuses)
        message["S"] = names[entry.message.sym]
        return message
