"""A reader's take of the server's books (`hub.books`) as the `/v1` wire has it: JSON entries
(`book_snapshot` and `book`) and binary payloads (frame types 4 and 3). Sans-IO."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.books import BookReader, Books, BookTake, Entry
from tickwire.feed.protocol import book as b
from tickwire.simulators.book import LEVEL_DTYPE


def json_entries(
    books: Books, reader: BookReader, taken: BookTake
) -> tuple[list[Entry], list[Entry]]:
    """`taken` (of `books`) as JSON entries: (book_snapshot entries, book entries)."""
    snaps = []
    for i in taken.snaps:
        lv = books.levels[i]
        assert lv is not None
        snaps.append(b.snapshot_entry(books.names[i], lv, int(reader.depth[i])))
    out = []
    records, units = taken.records, taken.units
    if len(records):
        sym = records["sym"].astype(np.intp)
        order = np.argsort(sym, kind="stable")
        sym = sym[order]
        price = (units[order] / books._scale[sym]).tolist()
        side = records["side"][order].tolist()
        size = records["size"][order].tolist()
        seq = records["seq"][order].tolist()
        ts = records["ts"][order].tolist()
        cuts = np.flatnonzero(np.diff(sym)) + 1
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(sym)], strict=True):
            i = int(sym[lo])
            steps = zip(side[lo:hi], price[lo:hi], size[lo:hi], strict=True)
            crc = books.crc(i, books.depth)
            out.append(b.change_entry(books.names[i], seq[hi - 1], steps, crc, ts[hi - 1]))
    for i, changes, since in taken.conflated:
        lv = books.levels[i]
        assert lv is not None
        diff = [(sd, lv.price(u), z) for sd, u, z in changes]
        crc = books.crc(i, int(reader.depth[i]))
        out.append(b.change_entry(books.names[i], lv.seq, diff, crc, lv.ts, since=since))
    return snaps, out


def binary_frames(
    books: Books, reader: BookReader, taken: BookTake, seq: Callable[[], int]
) -> list[bytes]:
    """`taken` (of `books`) as binary payloads (not framed), each stamped by `seq()`: a
    snapshot frame (type 4) for fresh and conflated books, every level of each within its
    depth, then a `book` frame (type 3) of every change as the market made it."""
    parts = []
    whole = [(i, 0) for i in taken.snaps] + [(i, b.CONFLATED) for i, _, _ in taken.conflated]
    if whole:
        rows, checks = [], np.zeros(len(whole), b.CHECK_DTYPE)
        for k, (i, flags) in enumerate(whole):
            lv = books.levels[i]
            assert lv is not None
            depth = int(reader.depth[i])
            rows.append(_ladder_records(i, lv, depth))
            checks[k] = (i, flags, books.crc(i, depth))
        records = np.concatenate(rows)
        parts.append(b.encode_book_binary(True, seq(), records, checks))
    if len(taken.records):
        ids = np.unique(taken.records["sym"])
        checks = np.zeros(len(ids), b.CHECK_DTYPE)
        checks["sym"] = ids
        checks["crc"] = [books.crc(i, books.depth) for i in ids.tolist()]
        parts.append(b.encode_book_binary(False, seq(), taken.records, checks))
    return parts


def _ladder_records(i: int, lv: b.Levels, depth: int) -> NDArray[np.void]:
    """Symbol `i`'s levels within `depth` as LEVEL_DTYPE records (its book seq and ts)."""
    bids, asks = lv.view(depth)
    out = np.zeros(len(bids) + len(asks), LEVEL_DTYPE)
    if len(out):
        units = np.array([u for u, _ in bids] + [u for u, _ in asks], np.int64)
        out["price"] = units / 10.0**lv.decimals
        out["size"] = [s for _, s in bids] + [s for _, s in asks]
        out["side"][len(bids) :] = 1
        best = np.repeat(
            [units[0] if bids else 0, units[len(bids)] if asks else 0], [len(bids), len(asks)]
        )
        out["level"] = np.abs(units - best) // lv.tick_units
    out["ts"], out["seq"], out["sym"] = lv.ts, lv.seq, i
    return out


__all__ = ["binary_frames", "json_entries"]
