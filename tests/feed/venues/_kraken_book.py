"""A Kraken v2 book as a client keeps it, by Kraken's documented rules alone: parse the message
with decimals (`json.loads(..., parse_float=Decimal)`, keeping each number as written), apply
each update (qty 0 removes), truncate to the subscribed depth, and verify the checksum on the
numbers' own text. For the Kraken tests."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tickwire.feed.venues.kraken_book import checksum


def parse(data: bytes | str) -> Any:
    """A Kraken message with its numbers as Decimals, as Kraken advises."""
    return json.loads(data, parse_float=Decimal)


class ClientBook:
    """One symbol's book: price -> qty per side, as the Decimals the wire carried."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.checked = 0

    def sides(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[: self.depth]
        asks = sorted(self.asks.items())[: self.depth]
        return bids, asks

    def apply(self, data: dict[str, Any]) -> None:
        """One `data` entry of a snapshot or an update; AssertionError if the checksum does not
        match the book it leads to."""
        for key, book in (("bids", self.bids), ("asks", self.asks)):
            for level in data[key]:
                price, qty = level["price"], level["qty"]
                assert isinstance(price, Decimal | int) and isinstance(qty, Decimal | int)
                if qty == 0:
                    book.pop(Decimal(price), None)
                else:
                    book[Decimal(price)] = Decimal(qty)
        bids, asks = self.sides()
        self.bids, self.asks = dict(bids), dict(asks)  # truncate to the subscribed depth
        text = [[(f"{p:f}", f"{q:f}") for p, q in side] for side in (asks, bids)]
        assert checksum(*text) == data["checksum"], ("checksum", data, bids, asks)
        self.checked += 1
