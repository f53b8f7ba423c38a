"""Reading Tardis order book CSVs for replay: `incremental_book_L2` and `book_snapshot_N` files.

Per Tardis's documented format (comma-separated, plain or gzip, timestamps in microseconds since
the epoch, UTC): `incremental_book_L2` rows are exchange, symbol, timestamp, local_timestamp,
is_snapshot, side (bid/ask), price, amount (the level's new size; 0 removes it); a run of rows
with is_snapshot true after rows without is a whole book that replaces the one held (a new day,
or the exchange's reconnect). `book_snapshot_25` (and `_5`, `_N`) rows are exchange, symbol,
timestamp, local_timestamp, then asks[i].price, asks[i].amount, bids[i].price, bids[i].amount
for i from 0 (empty once the book has no more levels): each row a whole book. `timestamp`
orders the rows (`local_timestamp` where it is empty). A malformed row is one UserError naming
the file, the line and what is wrong. numpy only.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

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
    """A book file's rows in file order: each a level (side, price, amount) of a symbol at ts;
    `whole` numbers the whole book a row belongs to (-1: a change of its own)."""

    path: Path
    names: list[str] = field(default_factory=list)
    sym: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    side: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    amount: list[str] = field(default_factory=list)  # as written: exact decimals
    whole: list[int] = field(default_factory=list)
    line: list[int] = field(default_factory=list)

    def add(
        self, sym: int, ts: int, side: int, price: float, amount: str, whole: int, line: int
    ) -> None:
        self.sym.append(sym)
        self.ts.append(ts)
        self.side.append(side)
        self.price.append(price)
        self.amount.append(amount)
        self.whole.append(whole)
        self.line.append(line)


def read_book_csv(path: Path, kind: str, wholes: int = 0) -> TardisRows:
    """Every row of a Tardis book file; whole books are numbered from `wholes`."""
    reader = csv.reader(text_lines(path))
    header = [h.strip() for h in next(reader)]
    col = {h: i for i, h in enumerate(header)}
    out = TardisRows(path)
    index: dict[str, int] = {}
    snap_of: dict[int, int] = {}  # symbol -> the whole book its snapshot rows make now
    levels = sorted(
        (
            int(m.group(2)),
            0 if m.group(1) == "bids" else 1,
            col[h],
            col.get(h[: -len("price")] + "amount"),
        )
        for h in header
        if (m := _LEVEL.fullmatch(h)) and m.group(3) == "price"
    )
    try:
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise _Bad(f"{len(row)} fields, the header has {len(header)}")
            sym = _symbol(row[col["symbol"]], index, out.names)
            ts = _ts(row, col)
            if kind == "incremental":
                side = _SIDES.get(row[col["side"]].strip().lower())
                if side is None:
                    raise _Bad(f"side must be bid or ask, got {row[col['side']]!r}")
                flag = _BOOLS.get(row[col["is_snapshot"]].strip().lower())
                if flag is None:
                    raise _Bad(
                        f"is_snapshot must be true or false, got {row[col['is_snapshot']]!r}"
                    )
                whole = -1
                if flag:
                    if sym not in snap_of:
                        snap_of[sym] = wholes
                        wholes += 1
                    whole = snap_of[sym]
                else:
                    snap_of.pop(sym, None)
                price, amount = _level(row[col["price"]], row[col["amount"]], "price", "amount")
                out.add(sym, ts, side, price, amount, whole, line)
                continue
            for k, side, pi, ai in levels:
                if not row[pi].strip() and (ai is None or not row[ai].strip()):
                    continue  # the book has fewer levels
                if ai is None:
                    raise _Bad(f"{'bids' if side == 0 else 'asks'}[{k}].amount is missing")
                name = f"{'bids' if side == 0 else 'asks'}[{k}]"
                price, amount = _level(row[pi], row[ai], f"{name}.price", f"{name}.amount")
                out.add(sym, ts, side, price, amount, wholes, line)
            wholes += 1
    except _Bad as exc:
        raise UserError(f"{path} line {line}: {exc}") from None
    except csv.Error as exc:
        raise UserError(f"{path} line {reader.line_num}: cannot read ({exc})") from None
    return out


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


def decimals_of(texts: list[str]) -> int:
    """The most decimals any of `texts` (decimal numbers as written) uses, at most 8."""
    most = 0
    for t in set(texts):
        if "e" in t.lower():
            t = f"{float(t):.8f}".rstrip("0")
        if "." in t:
            most = max(most, len(t.split(".", 1)[1].rstrip("0")))
    return min(most, 8)


def units(
    amounts: list[str], unit: NDArray[np.float64], sym: NDArray[np.intp]
) -> NDArray[np.uint64]:
    """Each amount as a whole count of its symbol's size unit (exact to 8 decimals)."""
    scaled = np.array([float(a) for a in amounts], np.float64) / unit[sym]
    return np.round(scaled).astype(np.uint64)
