"""The order book on the wire, sans-IO: one price-level book, its checksum, its messages.

Owns what server and client must agree on, once: `Levels` (a symbol's book as price units ->
size, its view within a depth of ticks from the best, and how a change applies), the CRC32
checksum (Kraken's algorithm on tickwire's units: over the top 10 asks then the top 10 bids
within the depth, each level's price in units of 10^-decimals, i.e. its price formatted with the
symbol's decimals, "." removed and leading zeros stripped, then its size as a decimal integer),
the JSON messages `book_snapshot` and `book`, and the binary frames (types 3 and 4: LEVEL_DTYPE
records, then one checksum entry per symbol). Never imports trio; reads no clock.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.feed.protocol.binary import BINARY_VERSION, DecodeError
from tickwire.simulators.book import LEVEL_DTYPE

CHECKSUM_LEVELS = 10  # levels a side the checksum covers (as Kraken's)
SIDES = ("bid", "ask")  # side 0 and 1, as LEVEL_DTYPE's `side`
BOOK_TYPE, BOOK_SNAPSHOT_TYPE = 3, 4  # binary header `type` of book frames
CHECK_DTYPE = np.dtype([("sym", "<u2"), ("flags", "<u2"), ("crc", "<u4")])
CONFLATED = 1  # CHECK_DTYPE flags bit: the symbol's records are a conflated change
_HEADER = struct.Struct("<BBHIQ")  # binary.HEADER_DTYPE: version, type, reserved, count, seq
# A book a client holds, best first: price (f8) and size (u8 in the symbol's size units).
LEVEL_ROW = np.dtype([("price", "<f8"), ("size", "<u8")])

Ladder = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]  # (bids, asks) in units
Sides = tuple[Sequence[tuple[int, int]], Sequence[tuple[int, int]]]  # a ladder as any sequences


def checksum(ladder: Sides) -> int:
    """CRC32 (unsigned) of the top 10 asks then the top 10 bids of `ladder` (best first)."""
    bids, asks = ladder
    text = "".join(
        f"{units}{size}" for units, size in (*asks[:CHECKSUM_LEVELS], *bids[:CHECKSUM_LEVELS])
    )
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def decimals_of(tick_size: float) -> int:
    """Decimal places of a tick size, at most 9: 0.01 -> 2, 0.25 -> 2, 5 -> 0 (the hub's rule)."""
    for places in range(10):
        scaled = tick_size * 10.0**places
        if abs(scaled - round(scaled)) <= 1e-9 * scaled:
            return places
    return 9


class Levels:
    """One symbol's book: size by price (in units of 10^-decimals) for each side.

    `depth` ticks from the best of a side is what a holder keeps: changes apply anywhere, then
    `view` cuts the book to its window (the server's book holds its whole depth; a client's is
    cut to the depth it asked for). `seq` is the book sequence of the last change applied.
    """

    __slots__ = ("asks", "bids", "decimals", "seq", "tick_units", "ts")

    def __init__(self, decimals: int, tick_units: int, seq: int = 0, ts: int = 0) -> None:
        self.decimals = decimals
        self.tick_units = max(1, tick_units)
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.seq = seq
        self.ts = ts

    @classmethod
    def for_tick(cls, tick_size: float, seq: int = 0, ts: int = 0) -> Levels:
        d = decimals_of(tick_size)
        return cls(d, round(tick_size * 10**d), seq, ts)

    def units(self, price: float) -> int:
        return round(price * 10.0**self.decimals)

    def price(self, units: int) -> float:
        return units / 10.0**self.decimals

    def set(self, side: int, units: int, size: int) -> None:
        book = self.asks if side else self.bids
        if size:
            book[units] = size
        else:
            book.pop(units, None)

    def view(self, depth: int) -> Ladder:
        """The non-empty levels within `depth` ticks of each side's best, best first."""
        span = depth * self.tick_units
        bids: tuple[tuple[int, int], ...] = ()
        asks: tuple[tuple[int, int], ...] = ()
        if self.bids:
            low = max(self.bids) - span
            bids = tuple(sorted(((u, s) for u, s in self.bids.items() if u > low), reverse=True))
        if self.asks:
            high = min(self.asks) + span
            asks = tuple(sorted((u, s) for u, s in self.asks.items() if u < high))
        return bids, asks

    def cut(self, depth: int) -> Ladder:
        """Keep only `view(depth)` (a client drops levels beyond its depth); returns it."""
        ladder = self.view(depth)
        self.bids, self.asks = dict(ladder[0]), dict(ladder[1])
        return ladder

    def apply(
        self, changes: Iterable[tuple[int, int, int]], depth: int, crc: int, seq: int, ts: int
    ) -> None:
        """Apply (side, units, size) changes, cut to `depth` and check `crc`; on a mismatch
        undo them all (an undo log: no copy of the book) and raise BookError."""
        undo: list[tuple[dict[int, int], int, int | None]] = []
        for side, units, size in changes:
            book = self.asks if side else self.bids
            undo.append((book, units, book.get(units)))
            if size:
                book[units] = size
            else:
                book.pop(units, None)
        span = depth * self.tick_units
        if self.bids:  # a client drops levels beyond its depth from the best
            low = max(self.bids) - span
            undo.extend(
                (self.bids, u, self.bids.pop(u)) for u in [u for u in self.bids if u <= low]
            )
        if self.asks:
            high = min(self.asks) + span
            undo.extend(
                (self.asks, u, self.asks.pop(u)) for u in [u for u in self.asks if u >= high]
            )
        top = CHECKSUM_LEVELS
        bids = sorted(self.bids.items(), reverse=True)[:top]
        if checksum((bids, sorted(self.asks.items())[:top])) != crc:
            for book, units, old in reversed(undo):
                if old is None:
                    book.pop(units, None)
                else:
                    book[units] = old
            raise BookError(f"book checksum mismatch at seq {seq}")
        self.seq, self.ts = seq, ts

    def load(self, ladder: Ladder, seq: int, ts: int) -> None:
        self.bids, self.asks = dict(ladder[0]), dict(ladder[1])
        self.seq, self.ts = seq, ts

    def rows(self, depth: int) -> tuple[NDArray[np.void], NDArray[np.void]]:
        """Bids and asks within `depth` as LEVEL_ROW arrays, best first."""
        out = []
        for side in self.view(depth):
            arr = np.empty(len(side), LEVEL_ROW)
            if side:
                units, size = zip(*side, strict=True)
                arr["price"] = np.asarray(units, np.float64) / 10**self.decimals
                arr["size"] = size
            out.append(arr)
        return out[0], out[1]


def diff(old: Ladder, new: Ladder) -> list[tuple[int, int, int]]:
    """(side, units, size) changes that turn `old` into `new` (size 0 removes a level)."""
    out: list[tuple[int, int, int]] = []
    for side in (0, 1):
        was, now = dict(old[side]), dict(new[side])
        out.extend((side, u, 0) for u in was if u not in now)
        out.extend((side, u, s) for u, s in now.items() if was.get(u) != s)
    return out


# ---------------------------------------------------------------------- JSON


def levels_json(levels: Levels, side: Sequence[tuple[int, int]]) -> list[list[float | int]]:
    return [[levels.price(u), s] for u, s in side]


def snapshot_entry(symbol: str, levels: Levels, depth: int) -> dict[str, Any]:
    """One symbol's `book_snapshot` entry: its levels within `depth`, and their checksum."""
    ladder = levels.view(depth)
    return {
        "symbol": symbol,
        "seq": levels.seq,
        "ts": levels.ts,
        "depth": depth,
        "decimals": levels.decimals,
        "tick_units": levels.tick_units,
        "bids": levels_json(levels, ladder[0]),
        "asks": levels_json(levels, ladder[1]),
        "checksum": checksum(ladder),
    }


def change_entry(
    symbol: str,
    seq: int,
    changes: Iterable[tuple[int, float, int]],
    crc: int,
    ts: int,
    since: int | None = None,
) -> dict[str, Any]:
    """One symbol's `book` entry. `since`: a conflated entry's base (the book seq it applies to;
    its changes are the current size of each level that changed); None: every change in order,
    the first at `seq - len(changes) + 1`."""
    entry: dict[str, Any] = {
        "symbol": symbol,
        "seq": seq,
        "ts": ts,
        "changes": [[SIDES[side], price, size] for side, price, size in changes],
        "checksum": crc,
    }
    if since is not None:
        entry["conflated"] = True
        entry["since"] = since
    return entry


def book_text(kind: str, seq: int, entries: list[dict[str, Any]]) -> bytes:
    """A `book` or `book_snapshot` message carrying the connection `seq`."""
    return orjson.dumps({"type": kind, "seq": seq, "books": entries})


class BookError(ValueError):
    """A book update that does not follow from the book held: resync (a snapshot) needed."""


def apply_entry(levels: Levels, entry: Mapping[str, Any], depth: int) -> None:
    """Apply one `book` entry to `levels` (a client's copy, cut to `depth`), or raise BookError
    without accepting it: its sequence must follow the book's and the checksum must match."""
    try:
        seq, changes, crc = int(entry["seq"]), entry["changes"], int(entry["checksum"])
        since = entry.get("since") if entry.get("conflated") else seq - len(changes)
        parsed = [(SIDES.index(c[0]), levels.units(float(c[1])), int(c[2])) for c in changes]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BookError(f"malformed book entry: {exc!r}") from None
    if since != levels.seq or seq <= levels.seq:
        raise BookError(f"book seq {levels.seq}, update for {since}..{seq}")
    levels.apply(parsed, depth, crc, seq, int(entry.get("ts", levels.ts)))


def load_snapshot(entry: Mapping[str, Any]) -> tuple[Levels, int]:
    """A client's book from a `book_snapshot` entry, and its depth; BookError if malformed."""
    try:
        levels = Levels(int(entry["decimals"]), int(entry["tick_units"]))
        sides = tuple(
            tuple((levels.units(float(p)), int(s)) for p, s in entry[k]) for k in ("bids", "asks")
        )
        depth, crc = int(entry["depth"]), int(entry["checksum"])
        levels.load((sides[0], sides[1]), int(entry["seq"]), int(entry["ts"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BookError(f"malformed book snapshot: {exc!r}") from None
    if checksum(levels.cut(depth)) != crc:
        raise BookError(f"book snapshot checksum mismatch at seq {levels.seq}")
    return levels, depth


# ---------------------------------------------------------------------- binary


def load_records(
    records: NDArray[np.void], decimals: int, tick_units: int, crc: int, depth: int
) -> Levels:
    """A client's book from one symbol's records of a binary `book_snapshot` frame."""
    if not len(records):
        raise BookError("a book snapshot without levels")
    levels = Levels(decimals, tick_units)
    units = np.round(records["price"] * 10.0**decimals).astype(np.int64).tolist()
    for side, u, size in zip(
        records["side"].tolist(), units, records["size"].tolist(), strict=True
    ):
        levels.set(side, u, size)
    levels.seq, levels.ts = int(records["seq"][0]), int(records["ts"][0])
    if checksum(levels.cut(depth)) != crc:
        raise BookError(f"book snapshot checksum mismatch at seq {levels.seq}")
    return levels


class BookFrame(NamedTuple):  # (a tuple: made once a frame, the client's hot path)
    snapshot: bool
    seq: int
    records: NDArray[np.void]  # LEVEL_DTYPE
    checks: NDArray[np.void]  # CHECK_DTYPE, one per symbol


def encode_book_binary(
    snapshot: bool, seq: int, records: NDArray[np.void], checks: NDArray[np.void]
) -> bytes:
    """Header (count = records, reserved = checksum entries), records, checksum entries."""
    kind = BOOK_SNAPSHOT_TYPE if snapshot else BOOK_TYPE
    head = _HEADER.pack(BINARY_VERSION, kind, len(checks), len(records), seq)
    return head + records.tobytes() + checks.tobytes()


def decode_book_binary(payload: bytes | bytearray | memoryview) -> BookFrame:
    """One-call numpy decode of a book frame (zero copy, read-only arrays)."""
    if len(payload) < _HEADER.size:
        raise DecodeError(f"binary frame of {len(payload)} bytes is shorter than its header")
    version, kind, n_checks, count, seq = _HEADER.unpack_from(payload)
    if version != BINARY_VERSION or kind not in (BOOK_TYPE, BOOK_SNAPSHOT_TYPE):
        raise DecodeError(f"not a book frame: version {version}, type {kind}")
    size = _HEADER.size + count * LEVEL_DTYPE.itemsize
    if len(payload) != size + n_checks * CHECK_DTYPE.itemsize:
        raise DecodeError(f"book frame length {len(payload)} does not hold {count} records")
    records = np.frombuffer(payload, LEVEL_DTYPE, count=count, offset=_HEADER.size)
    checks = np.frombuffer(payload, CHECK_DTYPE, count=n_checks, offset=size)
    return BookFrame(kind == BOOK_SNAPSHOT_TYPE, seq, records, checks)
