"""Reading Tardis order book CSVs for replay: `incremental_book_L2` and `book_snapshot_N` files.

Per Tardis's documented format (comma-separated, plain or gzip, timestamps in microseconds since
the epoch, UTC): `incremental_book_L2` rows are exchange, symbol, timestamp, local_timestamp,
is_snapshot, side (bid/ask), price, amount (the level's new size; 0 removes it); a run of rows
with is_snapshot true after rows without is a whole book that replaces the one held (a new day,
or the exchange's reconnect). `book_snapshot_25` (and `_5`, `_N`) rows are exchange, symbol,
timestamp, local_timestamp, then asks[i].price, asks[i].amount, bids[i].price, bids[i].amount
for i from 0 (empty once the book has no more levels): each row a whole book. `timestamp`
orders the rows (`local_timestamp` where it is empty). The file is read in blocks: a block of
plain rows is parsed as arrays (`_tardis_parse`), any other block row by row here, so a
malformed row is one UserError naming the file, the line and what is wrong. Rows come out as
columns (`TardisRows`), amounts exact. numpy only.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _tardis_parse as tp
from ._replay_rows import MAX_PRICE, text_lines
from .errors import UserError
from .ticks import MAX_SYMBOLS

INCREMENTAL = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side")
_LEVEL = re.compile(r"(asks|bids)\[(\d+)\]\.(price|amount)")
_SIDES = {"bid": 0, "ask": 1}
_BOOLS = {"true": True, "false": False}
_MAX_US = (2**63 - 1) // 1000


def book_kind(path: Path) -> str | None:
    """ "incremental" or "snapshot" for a Tardis book CSV (by its header), else None."""
    name = path.name.lower()
    if not name.endswith((".csv", ".csv.gz")) or not path.exists():
        return None
    try:
        header = next(csv.reader(text_lines(path)), [])
    except (UserError, csv.Error):
        return None  # the tick reader says what is wrong with it
    cols = {h.strip() for h in header}
    if set(INCREMENTAL) <= cols and {"price", "amount"} <= cols:
        return "incremental"
    if {"symbol", "timestamp"} <= cols and "asks[0].price" in cols and "bids[0].price" in cols:
        return "snapshot"
    return None


@dataclass
class TardisRows:
    """A book file's rows in file order, columnar: each a level (side, price, amount) of a
    symbol (`sym` indexes `names`) at ts; amounts exact (`mant` * 10**-`places`, trailing zeros
    dropped) and as floats; `whole` numbers the whole book a row belongs to (-1: a change of its
    own); `line` is the file's line of each."""

    path: Path
    names: list[str]
    sym: NDArray[np.int32]
    ts: NDArray[np.int64]
    side: NDArray[np.int8]
    price: NDArray[np.float64]
    mant: NDArray[np.int64]
    places: NDArray[np.int8]
    amount: NDArray[np.float64]
    whole: NDArray[np.int64]
    line: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.ts)


_Part = tuple[NDArray[Any], ...]  # the columns of TardisRows from `sym` on, for one block


def read_book_csv(path: Path, kind: str, wholes: int = 0) -> TardisRows:
    """Every row of a Tardis book file; whole books are numbered from `wholes`. Blocks of plain
    rows are parsed with numpy (`_tardis_parse`), any other block row by row."""
    reader, parts = book_parts(path, kind, wholes)
    reader.parts = list(parts)
    return reader.rows()


def book_parts(
    path: Path, kind: str, wholes: int = 0, block_bytes: int | None = None
) -> tuple[_Reader, Iterator[_Part]]:
    """The file's reader (its header read) and its rows block by block (`block_bytes` each,
    default `_tardis_parse.BLOCK_BYTES`), as columns (`TardisRows`' from `sym` on)."""
    it = tp.blocks(path, block_bytes)
    for block, line in it:
        head, _, block = block.partition(b"\n")
        text = head.decode("utf-8", "replace").removeprefix("\ufeff")
        header = [h.strip() for h in next(csv.reader([text]), [])]
        reader = _Reader(path, kind, header, wholes)
        return reader, _parts(reader, block, line + 1, it)
    raise UserError(f"{path} is empty; expected a header line")


def _parts(
    reader: _Reader, first: bytes, line: int, rest: Iterator[tuple[bytes, int]]
) -> Iterator[_Part]:
    if first:
        yield reader.block(first, line)
    for block, at in rest:
        yield reader.block(block, at)


class _Reader:
    """One file's rows, block by block: its symbols, its whole books so far."""

    def __init__(self, path: Path, kind: str, header: list[str], wholes: int) -> None:
        self.path, self.kind, self.width = path, kind, len(header)
        self.col = {h: i for i, h in enumerate(header)}
        self.levels = sorted(
            (
                int(m.group(2)),
                0 if m.group(1) == "bids" else 1,
                self.col[h],
                self.col.get(h[: -len("price")] + "amount"),
            )
            for h in header
            if (m := _LEVEL.fullmatch(h)) and m.group(3) == "price"
        )
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.snap_of: dict[int, int] = {}  # symbol -> the whole book its snapshot rows make now
        self.wholes = wholes
        self.parts: list[_Part] = []

    def block(self, block: bytes, line: int) -> _Part:
        fields = tp.split(block, line, self.width, self.path)
        got = None
        if fields is not None and len(fields.line):
            fast = _fast_l2 if self.kind == "incremental" else _fast_snapshot
            got = fast(self, fields)
        return got if got is not None else self._rows(block, line)

    def rows(self) -> TardisRows:
        """The blocks' columns joined, one column at a time (each block's part of a column is
        dropped as soon as it is joined: memory holds the rows once, and one column twice)."""
        dtypes = (np.int32, np.int64, np.int8, np.float64, np.int64, np.int8, np.float64)
        parts = [list(p) for p in self.parts]
        self.parts = []
        cols = []
        for k, d in enumerate((*dtypes, np.int64, np.int64)):
            joined = np.concatenate([p[k] for p in parts] + [np.empty(0, d)])
            cols.append(joined.astype(d, copy=False))
            for p in parts:
                p[k] = joined[:0]
        return TardisRows(self.path, self.names, *cols)

    def ids(self, names: list[str], local: NDArray[np.int64]) -> NDArray[np.int32] | None:
        """The file's symbol ids of a block's rows (None: one too many symbols)."""
        new = [n for n in names if n not in self.index]
        if len(self.names) + len(new) > MAX_SYMBOLS:
            return None  # the row path names the line
        for n in new:
            self.index[n] = len(self.names)
            self.names.append(n)
        lut = np.array([self.index[n] for n in names], np.int32)
        return lut[local]

    def _rows(self, block: bytes, first: int) -> _Part:
        """A block row by row: what is wrong with a row is a UserError naming its line."""
        texts = []
        for k, data in enumerate(block.split(b"\n")):
            try:
                texts.append(data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{self.path} line {first + k}: not UTF-8 text (byte 0x{data[exc.start]:02x})"
                ) from None
        out = tp.Lists()
        reader = csv.reader(texts)
        line = first
        try:
            for row in reader:
                line = first + reader.line_num - 1
                if row:
                    self._row(row, line, out)
        except _Bad as exc:
            raise UserError(f"{self.path} line {line}: {exc}") from None
        except csv.Error as exc:
            at = first + reader.line_num - 1
            raise UserError(f"{self.path} line {at}: cannot read ({exc})") from None
        return out.arrays()

    def _row(self, row: list[str], line: int, out: tp.Lists) -> None:
        col = self.col
        if len(row) != self.width:
            raise _Bad(f"{len(row)} fields, the header has {self.width}")
        sym = _symbol(row[col["symbol"]], self.index, self.names)
        ts = _ts(row, col)
        if self.kind == "incremental":
            side = _SIDES.get(row[col["side"]].strip().lower())
            if side is None:
                raise _Bad(f"side must be bid or ask, got {row[col['side']]!r}")
            flag = _BOOLS.get(row[col["is_snapshot"]].strip().lower())
            if flag is None:
                raise _Bad(f"is_snapshot must be true or false, got {row[col['is_snapshot']]!r}")
            whole = -1
            if flag:
                if sym not in self.snap_of:
                    self.snap_of[sym] = self.wholes
                    self.wholes += 1
                whole = self.snap_of[sym]
            else:
                self.snap_of.pop(sym, None)
            price, amount = _level(row[col["price"]], row[col["amount"]], "price", "amount")
            out.add(sym, ts, side, price, amount, whole, line)
            return
        for k, side, pi, ai in self.levels:
            if not row[pi].strip() and (ai is None or not row[ai].strip()):
                continue  # the book has fewer levels
            if ai is None:
                raise _Bad(f"{'bids' if side == 0 else 'asks'}[{k}].amount is missing")
            name = f"{'bids' if side == 0 else 'asks'}[{k}]"
            price, amount = _level(row[pi], row[ai], f"{name}.price", f"{name}.amount")
            out.add(sym, ts, side, price, amount, self.wholes, line)
        self.wholes += 1


def _fast_l2(reader: _Reader, f: tp.Fields) -> _Part | None:
    """A block of plain incremental_book_L2 rows as columns (None: read it row by row)."""
    col = reader.col
    named = tp.symbols(f, col["symbol"])
    us = tp.integers(f, col["timestamp"])
    side = tp.words(f, col["side"], (b"bid", b"ask"))
    flag = tp.words(f, col["is_snapshot"], (b"false", b"true"))
    price = tp.decimals(f, col["price"])
    amount = tp.decimals(f, col["amount"])
    if named is None or us is None or side is None or flag is None:
        return None
    if price is None or amount is None or not tp.prices_ok(price) or not tp.timestamps_ok(us):
        return None
    sym = reader.ids(*named)
    if sym is None:
        return None
    whole = _runs(reader, sym, flag.astype(np.bool_))
    return (
        sym,
        us * 1000,
        side,
        price.value,
        amount.mant,
        amount.places,
        amount.value,
        whole,
        f.line,
    )


def _runs(reader: _Reader, sym: NDArray[np.int32], flag: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Each row's whole book (-1: none): a symbol's run of snapshot rows is one, numbered in the
    order runs start; a run open at the block's start (`snap_of`) goes on."""
    n = len(sym)
    by = np.argsort(sym.astype(np.uint16), kind="stable")  # radix sort: symbol ids fit u2
    s, fl = sym[by], flag[by]
    head = np.ones(n, np.bool_)
    head[1:] = s[1:] != s[:-1]
    open_id = np.array([reader.snap_of.get(int(x), -1) for x in s[head]], np.int64)
    carried = np.zeros(n, np.int64) - 1
    carried[head] = open_id
    prev = np.zeros(n, np.bool_)
    prev[1:] = fl[:-1]
    prev = np.where(head, carried >= 0, prev)
    start = fl & ~prev
    starts = np.zeros(n, np.bool_)
    starts[by] = start
    number = reader.wholes + np.cumsum(starts) - 1  # in file order
    ids = np.where(start, number[by], np.where(head & fl & prev, carried, -1))
    at = np.maximum.accumulate(np.where(ids >= 0, np.arange(n), 0)) if n else ids
    got = np.where(fl, ids[at], -1)
    reader.wholes += int(starts.sum())
    last = np.ones(n, np.bool_)
    last[:-1] = s[1:] != s[:-1]
    for x, w in zip(s[last].tolist(), got[last].tolist(), strict=True):
        if w >= 0:
            reader.snap_of[x] = w
        else:
            reader.snap_of.pop(x, None)
    out = np.empty(n, np.int64)
    out[by] = got
    return out


def _fast_snapshot(reader: _Reader, f: tp.Fields) -> _Part | None:
    """A block of plain book_snapshot_N rows as columns, level by level (None: row by row)."""
    named = tp.symbols(f, reader.col["symbol"])
    us = tp.integers(f, reader.col["timestamp"])
    if named is None or us is None or not tp.timestamps_ok(us) or not reader.levels:
        return None
    cols: list[tuple[tp.Decimals, tp.Decimals, int]] = []
    for _, side, pi, ai in reader.levels:
        price = tp.decimals(f, pi, empty_ok=True)
        if ai is None or price is None:
            return None  # the row path says which amount is missing
        amount = tp.decimals(f, ai, empty_ok=True)
        if amount is None or (price.given != amount.given).any() or not tp.prices_ok(price):
            return None
        cols.append((price, amount, side))
    sym = reader.ids(*named)
    if sym is None:
        return None
    present = np.stack([p.given for p, _, _ in cols], axis=1)  # (rows, levels), row-major
    n = len(us)

    def each(values: list[NDArray[Any]]) -> NDArray[Any]:
        out: NDArray[Any] = np.stack(values, axis=1)[present]
        return out

    rows = np.broadcast_to(np.arange(n)[:, None], present.shape)[present]
    whole = reader.wholes + rows
    reader.wholes += n
    sides = [np.full(n, s, np.int8) for _, _, s in cols]
    return (
        sym[rows],
        us[rows] * 1000,
        each(sides),
        each([p.value for p, _, _ in cols]),
        each([a.mant for _, a, _ in cols]),
        each([a.places for _, a, _ in cols]),
        each([a.value for _, a, _ in cols]),
        whole.astype(np.int64),
        f.line[rows],
    )


class _Bad(ValueError):
    """What is wrong with a row (the caller adds the file and line)."""


def _symbol(text: str, index: dict[str, int], names: list[str]) -> int:
    name = text.strip()
    if not name:
        raise _Bad("no symbol")
    got = index.get(name)
    if got is None:
        if len(names) >= MAX_SYMBOLS:
            raise _Bad(f"more than the {MAX_SYMBOLS} symbols a feed serves")
        got = index[name] = len(names)
        names.append(name)
    return got


def _ts(row: list[str], col: dict[str, int]) -> int:
    """ns since the epoch from `timestamp` (us), or `local_timestamp` where it is empty."""
    text = (
        row[col["timestamp"]].strip() or row[col.get("local_timestamp", col["timestamp"])].strip()
    )
    if not text.isdigit() or int(text) > _MAX_US:
        raise _Bad(f"timestamp must be microseconds since the epoch, got {text!r}")
    return int(text) * 1000


def _level(price: str, amount: str, pname: str, aname: str) -> tuple[float, str]:
    try:
        p = float(price)
    except ValueError:
        raise _Bad(f"{pname} is not a number: {price!r}") from None
    if not 0 < p <= MAX_PRICE:
        raise _Bad(f"{pname} must be above 0 and at most {MAX_PRICE:g}, got {price.strip()!r}")
    a = amount.strip()
    try:
        value = float(a)
    except ValueError:
        raise _Bad(f"{aname} is not a number: {amount!r}") from None
    if not np.isfinite(value) or value < 0:
        raise _Bad(f"{aname} must be 0 or more, got {a!r}")
    return p, a
