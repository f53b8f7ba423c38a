"""The row-by-row reader of Tardis book files as it was before the columnar one: a reference
the columnar path must match record for record (`test_tardis_columnar.py`). Frozen: do not
improve it."""

from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators._model import decimals
from tickwire.simulators._replay_rows import MAX_PRICE, text_lines
from tickwire.simulators.book import LEVEL_DTYPE, MAX_DEPTH
from tickwire.simulators.bookmirror import BookMirror
from tickwire.simulators.errors import UserError
from tickwire.simulators.ticks import MAX_SYMBOLS, TICK_DTYPE, TickBatch
from tickwire.simulators.universe import Universe

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


_MAX_SIZE = 2**32 - 1  # a tick's bid_size and ask_size are u4


@dataclass
class TardisBooks:
    records: NDArray[np.void]  # LEVEL_DTYPE, time order
    snapshot: NDArray[np.bool_]  # the rows of each symbol's first whole book
    universe: Universe
    depth: int
    ticks: TickBatch  # the top of each book whenever it changed (for files without ticks)
    # By how much the ticks' sizes grow: the books' amounts need a finer size unit (None: not).
    finer: NDArray[np.uint64] | None = None


def tardis_books(
    paths: list[Path],
    kinds: list[str],
    universe: Universe | None,
    depth: int | None,
    tops: bool = True,
) -> TardisBooks:
    """Read and number the books of Tardis files `paths` (their `kinds`), on `universe` if
    given (else one inferred from them); `tops`: make the ticks of their tops too."""
    parts, wholes = [], 0
    for path, kind in zip(paths, kinds, strict=True):
        part = read_book_csv(path, kind, wholes)
        wholes = max([wholes, *(w + 1 for w in part.whole)])
        parts.append(part)
    if not any(p.sym for p in parts):
        raise UserError(f"nothing to replay: no book rows in {', '.join(map(str, paths))}")
    names = _names(parts, universe)
    index = {s: i for i, s in enumerate(names)}
    sym = np.concatenate([np.array([index[n] for n in p.names], np.intp)[p.sym] for p in parts])
    ts = np.concatenate([np.array(p.ts, np.int64) for p in parts])
    side = np.concatenate([np.array(p.side, np.int64) for p in parts])
    price = np.concatenate([np.array(p.price, np.float64) for p in parts])
    whole = np.concatenate([np.array(p.whole, np.int64) for p in parts])
    amounts = [a for p in parts for a in p.amount]
    where = [(p.path, line) for p in parts for line in p.line]
    finer = None
    if universe is None:
        universe = _inferred(names, sym, price, side, amounts)
    else:  # the ticks' unit, or a finer one if the amounts use more decimals
        have = universe.size_unit if universe.size_unit is not None else np.ones(len(names))
        need = np.minimum(have, _units(names, sym, amounts))
        if (need < have).any():
            finer = np.round(have / need).astype(np.uint64)
            universe = dataclasses.replace(universe, size_unit=need)
    tick = universe.tick_size.astype(np.float64)
    unit = universe.size_unit if universe.size_unit is not None else np.ones(len(names))
    size = _sizes(amounts, unit, sym, where)
    order = np.argsort(ts, kind="stable")
    mirror = BookMirror(tick, depth or MAX_DEPTH)
    units = np.round(price * 10.0 ** decimals(tick)[sym]).astype(np.int64)
    _on_grid(units, tick, sym, where)
    out = _Numbered(mirror, len(names), tops)
    members: dict[int, list[int]] = {}
    for k in np.flatnonzero(whole >= 0).tolist():
        members.setdefault(int(whole[k]), []).append(k)
    taken: set[int] = set()
    for k in order.tolist():
        s, t, w = int(sym[k]), int(ts[k]), int(whole[k])
        if w < 0:
            out.change(s, int(side[k]), int(units[k]), int(size[k]), t)
        elif w not in taken:
            taken.add(w)
            book: tuple[dict[int, int], dict[int, int]] = ({}, {})
            for m in members[w]:
                if size[m]:
                    book[int(side[m])][int(units[m])] = int(size[m])
            out.whole(s, book, t)
    depth = depth or out.span()
    return TardisBooks(*out.records(), universe, depth, out.ticks(tick), finer)


class _Numbered:
    """The level records (and top-of-book ticks) made as rows are taken in order."""

    def __init__(self, mirror: BookMirror, n: int, tops: bool) -> None:
        self.mirror = mirror
        self.want_tops = tops
        self.rows: list[tuple[int, int, int, int, int, int, bool]] = []  # ts seq sym side u size
        self.started = np.zeros(n, np.bool_)
        self.tops: list[tuple[int, int, int, int, int, int]] = []  # ts sym bid bsz ask asz
        self.last_top: dict[int, tuple[int, int, int, int]] = {}
        self.widest = 0

    def change(self, s: int, side: int, units: int, size: int, ts: int) -> None:
        self.started[s] = True
        seq = self.mirror.change(s, side, units, size, ts)
        self.rows.append((ts, seq, s, side, units, size, False))
        self._top(s, ts)

    def whole(self, s: int, book: tuple[dict[int, int], dict[int, int]], ts: int) -> None:
        self._span(s, book)
        if not self.started[s]:  # its book before the replay: snapshot rows at seq 1
            self.started[s] = True
            self.mirror.replace(s, book, ts, seq=1)
            for side in (0, 1):
                for u, size in book[side].items():
                    self.rows.append((ts, 1, s, side, u, size, True))
            self._top(s, ts)
            return
        for side, u, size, seq in self.mirror.replace(s, book, ts):
            self.rows.append((ts, seq, s, side, u, size, False))
        self._top(s, ts)

    def _span(self, s: int, book: tuple[dict[int, int], dict[int, int]]) -> None:
        for side in (0, 1):
            if book[side]:
                prices = list(book[side])
                self.widest = max(self.widest, self._ticks(s, max(prices) - min(prices)) + 1)

    def _ticks(self, s: int, units: int) -> int:
        return round(units / self.mirror.tick_units(s))

    def span(self) -> int:
        """A depth that shows each whole book seen: 20 ticks, or its widest side if wider."""
        return min(max(self.widest, 20), MAX_DEPTH)

    def _top(self, s: int, ts: int) -> None:
        if not self.want_tops:
            return
        top = self.mirror.top(s)
        if top is not None and self.last_top.get(s) != top:
            self.last_top[s] = top
            if self.tops and self.tops[-1][:2] == (ts, s):
                self.tops[-1] = (ts, s, *top)  # one tick per symbol and time: the last state
            else:
                self.tops.append((ts, s, *top))

    def records(self) -> tuple[NDArray[np.void], NDArray[np.bool_]]:
        out = np.zeros(len(self.rows), LEVEL_DTYPE)
        if self.rows:
            ts, seq, sym, side, u, size, snap = (np.array(c) for c in zip(*self.rows, strict=True))
            out["ts"], out["seq"], out["sym"], out["side"], out["size"] = ts, seq, sym, side, size
            out["price"] = u / self.mirror.scale(sym)
            return out, snap.astype(np.bool_)
        return out, np.zeros(0, np.bool_)

    def ticks(self, tick: NDArray[np.float64]) -> TickBatch:
        out = np.zeros(len(self.tops), TICK_DTYPE)
        if not self.tops:
            return out
        ts, sym, bid, bsz, ask, asz = (np.array(c) for c in zip(*self.tops, strict=True))
        scale = self.mirror.scale(sym)
        out["ts"], out["sym"], out["bid"], out["ask"] = ts, sym, bid / scale, ask / scale
        out["bid_size"], out["ask_size"] = np.minimum(bsz, _MAX_SIZE), np.minimum(asz, _MAX_SIZE)
        by = np.argsort(sym, kind="stable")
        first = np.r_[True, sym[by][1:] != sym[by][:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(len(by)), 0))
        seq = np.empty(len(by), np.uint64)
        seq[by] = np.arange(len(by)) - start + 1
        out["seq"] = seq
        return out


def _names(parts: list[TardisRows], universe: Universe | None) -> list[str]:
    seen = list(dict.fromkeys(n for p in parts for n in p.names))
    if universe is None:
        return sorted(seen)
    unknown = [s for s in seen if s not in universe]
    if unknown:
        raise UserError(f"symbol {unknown[0]!r} of the book files is not among the replay's ticks")
    return list(universe.symbols)


def _inferred(
    names: list[str],
    sym: NDArray[np.intp],
    price: NDArray[np.float64],
    side: NDArray[np.int64],
    amounts: list[str],
) -> Universe:
    """Reference data from the books: the tick from the decimals prices use, the size unit from
    those amounts use, the first mid as the price."""
    n = len(names)
    places = np.zeros(n, np.intp)
    np.maximum.at(places, sym, decimals(price))
    unit = _units(names, sym, amounts)
    first = np.ones(n)
    for s in range(n):
        bids, asks = price[(sym == s) & (side == 0)], price[(sym == s) & (side == 1)]
        if len(bids) and len(asks):
            first[s] = (bids.max() + asks.min()) / 2
        elif len(price[sym == s]):
            first[s] = price[sym == s][0]
    tick = 10.0 ** (-places.astype(np.float64))
    rows = [
        (s, s, "Other", float(first[i]), float(tick[i]), 1, 1.0, "stock")
        for i, s in enumerate(names)
    ]
    return Universe.from_rows(rows, size_unit=unit)


def _units(names: list[str], sym: NDArray[np.intp], amounts: list[str]) -> NDArray[np.float64]:
    """Per symbol, 10^-k: k the most decimals its amounts use (at most 8)."""
    by_sym: list[list[str]] = [[] for _ in names]
    for a, i in zip(amounts, sym.tolist(), strict=True):
        by_sym[i].append(a)
    return np.array([10.0 ** -decimals_of(texts) for texts in by_sym])


def _sizes(
    amounts: list[str],
    unit: NDArray[np.float64],
    sym: NDArray[np.intp],
    where: list[tuple[Path, int]],
) -> NDArray[np.uint64]:
    """Amounts as whole counts of each symbol's size unit; finer ones are a UserError."""
    scaled = np.array([float(a) for a in amounts], np.float64) / unit[sym]
    counts = np.round(scaled)
    bad = np.flatnonzero(
        (np.abs(scaled - counts) > 1e-6 * np.maximum(counts, 1)) | (counts >= 2**63)
    )
    if len(bad):
        k = int(bad[0])
        path, line = where[k]
        raise UserError(
            f"{path} line {line}: amount {amounts[k]} is not a whole number of the symbol's size"
            f" unit {unit[sym[k]]:g} below 2**63 of them (its ticks count sizes in it)"
        )
    return counts.astype(np.uint64)


def _on_grid(
    units: NDArray[np.int64],
    tick: NDArray[np.float64],
    sym: NDArray[np.intp],
    where: list[tuple[Path, int]],
) -> None:
    """Every price on its symbol's tick grid, else a UserError naming the row."""
    step = np.maximum(np.round(tick * 10.0 ** decimals(tick)), 1).astype(np.int64)[sym]
    bad = np.flatnonzero(units % step)
    if len(bad):
        k = int(bad[0])
        path, line = where[k]
        raise UserError(f"{path} line {line}: price off the tick grid of {tick[sym[k]]:g}")
