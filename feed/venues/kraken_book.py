"""Kraken WebSocket v2's `book` channel over the server's order books, and Kraken's checksum.

A subscription names a depth in levels a side (`DEPTHS`); the client keeps that many and, as
Kraken documents, truncates its book to them after every update (it is never told a level fell
out of scope). So each update is what turns the top `depth` levels last sent into the top levels
now: changed levels with their new `qty`, removed ones with `qty` 0, and levels coming into
scope; a `checksum` over the top 10 of each side follows every snapshot and update. Prices
and quantities are JSON numbers written with the instrument's decimals (`0.00100000`, trailing
zeros kept), as Kraken writes them: a client that parses them as decimals, as Kraken advises,
gets the checksum's strings.

The checksum is Kraken's (`checksum`): the top 10 asks (best first) then the top 10 bids, each
level's price and qty as the venue writes them with the instrument's decimals, "." removed and
leading zeros stripped, concatenated; CRC32 as an unsigned integer. The stream computes it on
integers (`checksum_units`: a price in units of 10^-decimals is those digits, and so is a qty in
units of its 10^-decimals), which is the same text.

Levels are counted, but the server books in ticks a side: a subscription of `depth` levels books
`min(depth, server depth)` ticks (`booking_depth`): any subscription at the server's depth or
deeper is the whole server book (it holds at most that many levels a side). Per symbol and
booking depth, the encoder keeps the levels last sent (shared by every connection at it), and a
new subscriber's snapshot is that view, so the next update applies to it as to everyone's.
Sans-IO: no trio, no sockets, no clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from tickwire.feed.hub.books import Books
from tickwire.feed.protocol.book import Ladder
from tickwire.feed.venues._common import Clock, Entry, Frame, Shared, decimals_of
from tickwire.feed.venues._sizes import Sizes
from tickwire.feed.venues.coinbase_book import price_text
from tickwire.simulators.universe import Universe

DEPTHS = (10, 25, 100, 500, 1000)  # Kraken's book depths (levels a side)
DEFAULT_DEPTH = 10
CHECKSUM_LEVELS = 10
BOOK = "book"  # a `Shared` entry's channel is f"{BOOK}:{booking depth}"


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> int:
    """Kraken's CRC32 of a book from the strings a client holds: (price, qty) best first,
    formatted with the instrument's decimals; the top 10 of each side count."""
    top = CHECKSUM_LEVELS
    text = "".join(_digits(p) + _digits(q) for p, q in [*list(asks)[:top], *list(bids)[:top]])
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def checksum_units(ladder: Ladder, qty_scale: int = 1) -> int:
    """The same checksum from a ladder in integer units (a price in 10^-price decimals, a size
    in size units, each `qty_scale` of the qty's last decimal)."""
    bids, asks = ladder
    top = CHECKSUM_LEVELS
    text = "".join(f"{u}{s * qty_scale}" for u, s in (*asks[:top], *bids[:top]))
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def booking_depth(depth: int, server_depth: int) -> int:
    """Ticks a side that a subscription of `depth` levels books on a server of `server_depth`."""
    return min(depth, server_depth)


class KrakenBooks:
    """The `book` channel's messages for every symbol and booking depth, built once for all
    Kraken sessions."""

    def __init__(self, universe: Universe) -> None:
        sizes = Sizes(universe)
        self._scaled = sizes.scaled  # a size unit in the qty's last decimal
        self._qty = sizes.formats()  # per symbol: size units -> the exact quantity's text
        self._decimals = [decimals_of(float(t)) for t in universe.tick_size]
        self.names = [f"{b}/{q}" for b, q in zip(universe.bases, universe.quotes, strict=True)]
        self._clock = Clock()
        self._sent: dict[tuple[int, int], tuple[Ladder, int]] = {}  # (sym, d) -> view, seq
        self._codecs = {"json": _raw}

    def _levels(self, sym: int, side: Sequence[tuple[int, int]]) -> str:
        """A side's levels as JSON, numbers written with the instrument's decimals."""
        d, qty = self._decimals[sym], self._qty[sym]
        return ",".join(
            f'{{"price":{price_text(u, d)},"qty":{qty(s) if s else "0"}}}' for u, s in side
        )

    def _message(self, kind: str, sym: int, ladder: Ladder, crc: int, ts: int) -> bytes:
        """A `book` message; JSON written here, as orjson would write 0.001 for 0.00100000."""
        bids, asks = ladder
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{self.names[sym]}",'
            f'"bids":[{self._levels(sym, bids)}],"asks":[{self._levels(sym, asks)}],'
            f'"checksum":{crc},"timestamp":"{self._clock.us(ts)}"}}]}}'
        ).encode()

    def _view(self, books: Books, sym: int, depth: int) -> Ladder:
        """The top levels of `sym` for booking depth `depth` (levels a side, all of the server
        book at its depth)."""
        bids, asks = books.ladder(sym, books.depth)[0]
        if depth < books.depth:
            bids, asks = bids[:depth], asks[:depth]
        return bids, asks

    def snapshot(self, sym: int, depth: int, books: Books, now_ns: int) -> list[Frame]:
        """A subscriber's snapshot at booking depth `depth`: the levels last sent at it (the
        book now if none were)."""
        sent = self._sent.get((sym, depth))
        if sent is None:
            _, seq, _ = books.ladder(sym, books.depth)
            sent = self._sent[(sym, depth)] = (self._view(books, sym, depth), seq)
        crc = checksum_units(sent[0], self._scaled[sym])
        return [Frame(self._message("snapshot", sym, sent[0], crc, now_ns))]

    def updates(self, depth: int, booked: Iterable[int], books: Books, now_ns: int) -> Shared:
        """An update for each booked symbol whose book moved since its last: what turns the
        levels last sent at `depth` into the top levels now."""
        out = Shared(now_ns, self._codecs)
        channel = f"{BOOK}:{depth}"
        keep = set()
        for sym in booked:
            key = (sym, depth)
            keep.add(key)
            lv = books.levels[sym]
            sent = self._sent.get(key)
            if lv is None or sent is None or lv.seq == sent[1]:
                continue
            new = self._view(books, sym, depth)
            self._sent[key] = (new, lv.seq)
            if new == sent[0]:
                continue  # moved beyond the subscribed levels only
            out.add(sym, channel, self._update(sym, sent[0], new, lv.ts))
        for key in [k for k in self._sent if k[1] == depth and k not in keep]:
            del self._sent[key]  # nobody books it at this depth any more
        return out

    def _update(self, sym: int, old: Ladder, new: Ladder, ts: int) -> bytes:
        sides = []
        for was, now in zip(old, new, strict=True):
            before, after = dict(was), dict(now)
            gone = [(u, 0) for u in before if u not in after]
            changed = [(u, s) for u, s in now if before.get(u) != s]
            sides.append(tuple(gone + changed))
        crc = checksum_units(new, self._scaled[sym])
        return self._message("update", sym, (sides[0], sides[1]), crc, ts)


def _raw(shared: Shared, entry: Entry) -> bytes:
    data: bytes = entry.message
    return data


__all__ = [
    "BOOK",
    "DEFAULT_DEPTH",
    "DEPTHS",
    "KrakenBooks",
    "booking_depth",
    "checksum",
    "checksum_units",
]
