"""A Kraken v2 book as a client keeps it, by Kraken's documented rules alone: apply each update
(qty 0 removes), truncate to the subscribed depth, verify the checksum on the strings (prices
and quantities formatted with the instrument's decimals). For the Kraken tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tickwire.feed.venues.kraken_book import checksum


class ClientBook:
    """One symbol's book: price -> qty per side, as Decimals."""

    def __init__(self, depth: int, price_decimals: int, qty_decimals: int) -> None:
        self.depth = depth
        self.places = (price_decimals, qty_decimals)
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.checked = 0

    def _text(self, value: Decimal, places: int) -> str:
        return f"{value:.{places}f}"

    def sides(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[: self.depth]
        asks = sorted(self.asks.items())[: self.depth]
        return bids, asks

    def apply(self, data: dict[str, Any]) -> None:
        """One `data` entry of a snapshot (after `reset`) or an update; raises AssertionError
        if the checksum does not match."""
        for key, book in (("bids", self.bids), ("asks", self.asks)):
            for level in data[key]:
                price, qty = Decimal(str(level["price"])), Decimal(str(level["qty"]))
                if qty == 0:
                    book.pop(price, None)
                else:
                    book[price] = qty
        bids, asks = self.sides()
        self.bids, self.asks = dict(bids), dict(asks)  # truncate to the subscribed depth
        pd, qd = self.places
        text = [(self._text(p, pd), self._text(q, qd)) for p, q in asks]
        tb = [(self._text(p, pd), self._text(q, qd)) for p, q in bids]
        assert checksum(text, tb) == data["checksum"], ("checksum", data, bids, asks)
        self.checked += 1

    def reset(self) -> None:
        self.bids.clear()
        self.asks.clear()
