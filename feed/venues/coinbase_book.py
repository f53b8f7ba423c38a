"""Coinbase Exchange's `level2` and `level2_batch` channels over the server's order books.

Both are the whole book (the server's depth): a subscriber first gets `{"type": "snapshot",
"product_id", "bids", "asks"}` ([price, size] strings, best first), then `l2update` messages
`{"type": "l2update", "product_id", "changes": [[side, price, size]], "time"}` where side is
"buy" (a bid) or "sell" and size "0" removes the level. `level2` carries every change in the
market's order, one `l2update` per product per take of the book (a fresh snapshot if the
server's reader lost changes, as Coinbase resends one); `level2_batch` conflates them
per level and sends each product's at most every `BATCH_NS` (50 ms) of event time, as Coinbase
does.
`level2` needs a signed subscribe at Coinbase: `refusal` accepts any well-formed `key`,
`signature` (base64), `passphrase` and `timestamp`, and with server tokens the key must be one.
Prices and sizes are exact decimal strings at the product's increments (`products`). Built once
per take for all Coinbase sessions. Sans-IO: no trio, no sockets, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import orjson

from tickwire.feed.hub.books import Books, BookTake
from tickwire.feed.venues._common import NS_PER_MS, Clock, Entry, Frame, Shared, decimals_of
from tickwire.feed.venues._sizes import Sizes
from tickwire.feed.venues.books import BOOKS_OFF
from tickwire.simulators.universe import Universe

LEVEL2, LEVEL2_BATCH = "level2", "level2_batch"
BOOK_CHANNELS = (LEVEL2, LEVEL2_BATCH)  # the whole book at the server's depth
AUTHENTICATED = (LEVEL2,)  # Coinbase asks for a signed subscribe (any well-formed one here)
AUTH_FIELDS = ("key", "signature", "passphrase", "timestamp")
BATCH_NS = 50 * NS_PER_MS
SIDES = ("buy", "sell")  # LEVEL_DTYPE side 0 (bid), 1 (ask)


def price_text(units: int, decimals: int) -> str:
    """A price in units of 10^-decimals as its exact decimal string (1234567, 2: "12345.67")."""
    if not decimals:
        return str(units)
    q, r = divmod(units, 10**decimals)
    return f"{q}.{r:0{decimals}d}"


class CoinbaseBooks:
    """The level2 channels' messages for every product, built once for all Coinbase sessions."""

    def __init__(self, universe: Universe) -> None:
        self.names = list(universe.symbols)
        self._decimals = [decimals_of(float(t)) for t in universe.tick_size]
        self._size = Sizes(universe).formats()
        self._clock = Clock()
        self._codecs = {"json": _raw}
        self._next_ns = 0  # when level2_batch next sends (event time)
        self._pending: dict[int, dict[tuple[int, int], int]] = {}  # sym -> (side, units): size

    def _pairs(self, sym: int, side: Iterable[tuple[int, int]]) -> list[list[str]]:
        d, size = self._decimals[sym], self._size[sym]
        return [[price_text(u, d), size(s)] for u, s in side]

    def snapshot(self, sym: int, books: Books, now_ns: int) -> list[Frame]:
        """A subscriber's first message of `sym`: its whole book now."""
        return [Frame(self._snapshot(sym, books, now_ns))]

    def _snapshot(self, sym: int, books: Books, now_ns: int) -> bytes:
        (bids, asks), _, _ = books.ladder(sym, books.depth)
        message = {
            "type": "snapshot",
            "product_id": self.names[sym],
            "bids": self._pairs(sym, bids),
            "asks": self._pairs(sym, asks),
            "time": self._clock.us(now_ns),
        }
        return orjson.dumps(message)

    def updates(self, take: BookTake, booked: Iterable[int], books: Books, now_ns: int) -> Shared:
        """`level2` updates of one take at the server's depth (every change, in order), then the
        `level2_batch` updates due by `now_ns`; a fresh snapshot on both for a symbol whose
        changes the take lost (`take.snaps`: the server's reader fell behind)."""
        out = Shared(now_ns, self._codecs)
        records, units = take.records, take.units
        pending = self._pending
        for s in take.snaps:  # the server's reader resynced: changes were lost, start over
            pending.pop(s, None)
            for channel in BOOK_CHANNELS:
                out.add(s, channel, self._snapshot(s, books, now_ns))
        if len(records):
            sym = records["sym"].astype(np.intp)
            order = np.argsort(sym, kind="stable")
            syms, sides = sym[order].tolist(), records["side"][order].tolist()
            prices, sizes = units[order].tolist(), records["size"][order].tolist()
            stamps = records["ts"][order].tolist()
            start = 0
            for k in range(1, len(syms) + 1):
                if k < len(syms) and syms[k] == syms[start]:
                    continue
                s = syms[start]
                steps = list(zip(sides[start:k], prices[start:k], sizes[start:k], strict=True))
                out.add(s, LEVEL2, self._l2update(s, steps, stamps[k - 1]))
                held = pending.setdefault(s, {})
                for side, u, size in steps:
                    held[(side, u)] = size
                start = k
        if now_ns >= self._next_ns:
            self._next_ns = now_ns + BATCH_NS
            keep = set(booked)
            for s, held in sorted(pending.items()):
                if held and s in keep:
                    steps = [(side, u, size) for (side, u), size in held.items()]
                    out.add(s, LEVEL2_BATCH, self._l2update(s, steps, now_ns))
            pending.clear()
        return out

    def _l2update(self, sym: int, steps: list[tuple[int, int, int]], ts: int) -> bytes:
        d, size = self._decimals[sym], self._size[sym]
        message: dict[str, Any] = {
            "type": "l2update",
            "product_id": self.names[sym],
            "changes": [[SIDES[side], price_text(u, d), size(z)] for side, u, z in steps],
            "time": self._clock.us(ts),
        }
        return orjson.dumps(message)


def refusal(
    name: str, msg: dict[str, Any], book_depth: int, tokens: Sequence[str]
) -> tuple[str, str] | None:
    """Coinbase's error (message, reason) for a subscribe to book channel `name` that this
    connection may not have, or None: books off, or `level2` without a well-formed signed
    subscribe, or (with server tokens) a key that is none of them."""
    if not book_depth:
        return "Failed to subscribe", BOOKS_OFF
    if name not in AUTHENTICATED:
        return None
    given = {f: msg.get(f) for f in AUTH_FIELDS}
    if not _well_formed(given):
        return (
            "Failed to subscribe",
            f"{name} requires authentication: a subscribe with key, signature (base64),"
            " passphrase and timestamp",
        )
    key = str(given["key"]).encode()
    if tokens and not any(hmac.compare_digest(key, t.encode()) for t in tokens):
        return "Authentication Failed", "invalid API key: use a token of the server"
    return None


def _well_formed(given: dict[str, Any]) -> bool:
    """A signed subscribe's fields as Coinbase takes them (the signature is not checked)."""
    key, signature, passphrase, stamp = (given[f] for f in AUTH_FIELDS)
    if not all(isinstance(v, str) and 0 < len(v) <= 256 for v in (key, signature, passphrase)):
        return False
    if isinstance(stamp, bool) or not isinstance(stamp, int | float | str):
        return False
    try:
        base64.b64decode(str(signature), validate=True)
        seconds = float(stamp)  # since the epoch, a number or its text
    except (binascii.Error, ValueError, OverflowError):
        return False
    return math.isfinite(seconds)


def _raw(shared: Shared, entry: Entry) -> bytes:
    data: bytes = entry.message
    return data


__all__ = [
    "AUTHENTICATED",
    "BATCH_NS",
    "BOOK_CHANNELS",
    "LEVEL2",
    "LEVEL2_BATCH",
    "CoinbaseBooks",
    "price_text",
    "refusal",
]
