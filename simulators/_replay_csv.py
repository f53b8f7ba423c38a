"""Streaming the replay CSVs: tickwire's own and real quotes/trades, a chunk of rows at a time.

Memory holds one chunk of text rows (`CHUNK_ROWS`) besides the numbers already parsed, whatever
the file's size; lines come bounded from `_replay_rows.text_lines`. What is malformed (a field
that is not a number, a missing field, a header without the needed columns) is a UserError naming
the file and line. What parses but cannot be replayed (NaN prices, a crossed quote, a size, a
volume or a timestamp out of range) goes to the file's `Screen`: skipped and counted, or, strict,
refused. More symbols than the wire's 16-bit id can name is a UserError at the first one too many.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._replay_parts import ALIASES, OWN_CSV, Own, Raw
from ._replay_rows import MAX_PRICE, Screen, out_of_range, price_reason, screen_records, text_lines
from .errors import UserError
from .ticks import MAX_SYMBOLS, TICK_DTYPE

CHUNK_ROWS = 16_384  # text rows held at once (~8 MB of Python strings at most)
_MAX_SIZE = 2**32 - 1  # sizes travel as u4 in units of at most 1
_MAX_TS_S = (2**63 - 1) // 10**9  # 2262-04-11: the last second int64 ns can hold
_TS_SCALES = ((1, 1e17), (1_000, 1e14), (1_000_000, 1e11))  # ns per unit, told by size
_PRICES = ("bid", "ask", "price")
_SIZES = ("bid_size", "ask_size", "size")
_QUANTITIES = ("volume", "bid_size", "ask_size", "last_size")  # our CSV's sizes: may have decimals
_MAX_PLACES = 12


def read_csv(path: Path, columns: dict[str, str], *, strict: bool) -> Own | Raw:
    screen = Screen(path, strict=strict)
    reader = csv.reader(text_lines(path))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise UserError(f"{path} is empty; expected a header line") from None
    except csv.Error as exc:
        raise UserError(f"{path} line 1: cannot read ({exc})") from None
    own = [h.lower() for h in header] == OWN_CSV and not columns
    parser: _OwnCsv | _RawCsv
    parser = _OwnCsv(path, screen) if own else _RawCsv(path, header, columns, screen)
    for rows, lines in _chunks(path, reader):
        parser.add(rows, lines)
    screen.report()
    return parser.result()


_Chunk = tuple[list[list[str]], NDArray[np.int64]]  # text rows, and the line each ends on
_Part = tuple[NDArray[np.intp], NDArray[np.int64], dict[str, NDArray[np.float64]], NDArray[np.int8]]


def _chunks(path: Path, reader: Iterator[list[str]]) -> Iterator[_Chunk]:
    rows: list[list[str]] = []
    lines: list[int] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = getattr(reader, "line_num", 0)
            raise UserError(f"{path} line {line}: cannot read ({exc})") from None
        if not row:
            continue  # a blank line
        rows.append(row)
        lines.append(getattr(reader, "line_num", 0))
        if len(rows) == CHUNK_ROWS:
            yield rows, np.array(lines, np.int64)
            rows, lines = [], []
    if rows:
        yield rows, np.array(lines, np.int64)


class _Names:
    """Symbol names in order of appearance -> ids, at most MAX_SYMBOLS of them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index: dict[str, int] = {}

    def ids(self, names: list[str], lines: NDArray[np.int64]) -> NDArray[np.intp]:
        uniq, inverse = np.unique(np.array(names, dtype=str), return_inverse=True)
        lut = np.empty(len(uniq), np.intp)
        for k, name in enumerate(uniq.tolist()):
            got = self.index.get(name)
            if got is None:
                if len(self.index) >= MAX_SYMBOLS:
                    at = int(lines[int(np.flatnonzero(inverse.reshape(-1) == k)[0])])
                    raise UserError(
                        f"{self.path} line {at}: symbol {name!r} is one more than the"
                        f" {MAX_SYMBOLS} a feed serves (the wire's symbol id is 16 bits);"
                        " split the data or keep fewer symbols"
                    )
                got = self.index[name] = len(self.index)
            lut[k] = got
        return lut[inverse.reshape(-1)]


def _floats(
    path: Path, texts: list[str], lines: NDArray[np.int64], field: str
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The column as numbers (empty: NaN) and where a value was given."""
    vals = [t.strip() for t in texts]
    present = np.array([bool(v) for v in vals], np.bool_)
    try:
        return np.array([v or "nan" for v in vals], np.float64), present
    except ValueError:
        pass
    out = np.empty(len(vals))
    for i, v in enumerate(vals):
        try:
            out[i] = float(v) if v else np.nan
        except ValueError:
            raise UserError(
                f"{path} line {lines[i]}: field {field!r}: expected a number, got {v!r}"
            ) from None
    return out, present


def _ints(
    path: Path, texts: list[str], lines: NDArray[np.int64], field: str, signed: bool
) -> tuple[NDArray[np.integer[Any]], NDArray[np.bool_]]:
    """The column as 64-bit integers and where a value does not fit them (set to 0)."""
    vals = [t.strip() for t in texts]
    wide = np.int64 if signed else np.uint64
    info = np.iinfo(wide)
    try:
        return np.array(vals, wide), np.zeros(len(vals), np.bool_)
    except (ValueError, OverflowError):
        pass
    out = np.zeros(len(vals), wide)
    bad = np.zeros(len(vals), np.bool_)
    for i, v in enumerate(vals):
        try:
            x = int(v)
        except ValueError:
            raise UserError(
                f"{path} line {lines[i]}: field {field!r}: expected an integer, got {v!r}"
            ) from None
        if info.min <= x <= info.max:
            out[i] = x
        else:
            bad[i] = True
    return out, bad


def _quantities(
    path: Path, texts: list[str], lines: NDArray[np.int64], field: str
) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """A size column with decimals (a crypto quantity, "0.00210"): each value exactly as an
    integer mantissa and its decimal places (210, 5)."""
    mant = np.zeros(len(texts), np.uint64)
    places = np.zeros(len(texts), np.int64)
    for i, text in enumerate(texts):
        whole, _, frac = text.strip().partition(".")
        digits = whole + frac
        if not digits.isdigit() or len(frac) > _MAX_PLACES or int(digits) >= 2**64:
            raise UserError(
                f"{path} line {lines[i]}: field {field!r}: expected a quantity"
                f" (digits, at most {_MAX_PLACES} decimals), got {text.strip()!r}"
            )
        mant[i], places[i] = int(digits), len(frac)
    return mant, places


class _OwnCsv:
    """`symbol` then every TICK_DTYPE field, as `tickwire simulate`/`record` write them. Sizes
    may be quantities with decimals (crypto): each symbol's size unit is then 10^-k, k the most
    decimals its sizes use, and its sizes integer counts of it (`size_unit`, exact)."""

    def __init__(self, path: Path, screen: Screen) -> None:
        self.path, self.screen = path, screen
        self.names = _Names(path)
        self.parts: list[NDArray[np.void]] = []
        self.quantities: list[dict[str, tuple[NDArray[np.uint64], NDArray[np.int64]]]] = []

    def add(self, rows: list[list[str]], lines: NDArray[np.int64]) -> None:
        for r, line in zip(rows, lines.tolist(), strict=True):
            if len(r) != len(OWN_CSV):
                raise UserError(
                    f"{self.path} line {line}: {len(r)} fields, the header names {len(OWN_CSV)}"
                )
        records = np.zeros(len(rows), TICK_DTYPE)
        keep = np.ones(len(rows), np.bool_)
        decimal: dict[str, tuple[NDArray[np.uint64], NDArray[np.int64]]] = {}
        for j, f in enumerate(OWN_CSV[1:], start=1):
            texts = [r[j] for r in rows]
            kind = TICK_DTYPE[f]
            if kind.kind == "f":
                records[f] = _floats(self.path, texts, lines, f)[0]
                continue
            if f in _QUANTITIES and any("." in t for t in texts):
                decimal[f] = _quantities(self.path, texts, lines, f)  # scaled in `result`
                continue
            values, bad = _ints(self.path, texts, lines, f, kind.kind == "i")
            bad |= out_of_range(values, kind)
            info = np.iinfo(kind)
            self.screen.drop(bad & keep, lines, f"{f} out of range ({info.min} to {info.max})")
            keep &= ~bad
            records[f][keep] = values[keep]
        nameless = keep & np.array([not r[0].strip() for r in rows], np.bool_)
        self.screen.drop(nameless, lines, "no symbol")
        keep &= ~nameless
        records, lines = records[keep], lines[keep]
        named = [r[0] for r, k in zip(rows, keep.tolist(), strict=True) if k]
        records["sym"] = self.names.ids(named, lines)
        fine = screen_records(records, lines, self.screen)
        self.parts.append(records[fine])
        self.quantities.append({f: (m[keep][fine], p[keep][fine]) for f, (m, p) in decimal.items()})

    def result(self) -> Own:
        records = np.concatenate([*self.parts, np.empty(0, TICK_DTYPE)])
        if not any(self.quantities):
            return Own(list(self.names.index), records, None)
        # Each symbol's unit: 10^-k, k the most decimals any of its sizes uses; sizes in it.
        sym = records["sym"].astype(np.intp)
        whole = np.zeros(len(records), np.int64)  # the places of an integer column
        cols: dict[str, tuple[NDArray[np.uint64], NDArray[np.int64]]] = {}
        for f in _QUANTITIES:
            mants = [q[f][0] if f in q else p[f].astype(np.uint64) for p, q in self._chunks()]
            places = [q[f][1] if f in q else whole[: len(p)] for p, q in self._chunks()]
            cols[f] = (np.concatenate(mants), np.concatenate(places))
        k = np.zeros(len(self.names.index), np.int64)
        for _, place in cols.values():
            np.maximum.at(k, sym, place)
        for f, (mant, place) in cols.items():
            units = mant * (10 ** (k[sym] - place)).astype(np.uint64)  # exact: integers only
            top = np.iinfo(TICK_DTYPE[f]).max
            if len(units) and int(units.max()) > top:
                raise UserError(f"{self.path}: field {f!r}: a quantity too large to replay")
            records[f] = units
        unit = 1.0 / 10.0 ** k.astype(np.float64)  # 1e-05 itself, not 10.0**-5 (1.00...01e-05)
        return Own(list(self.names.index), records, None, size_unit=unit)

    def _chunks(self) -> Iterator[tuple[NDArray[np.void], dict[str, Any]]]:
        return zip(self.parts, self.quantities, strict=True)


def _find(header: list[str], field: str, columns: dict[str, str]) -> int | None:
    lower = [h.lower() for h in header]
    if field in columns:
        want = columns[field].lower()
        if want not in lower:
            raise UserError(
                f"--columns {field}={columns[field]}: no such column; the header has"
                f" {', '.join(header)}"
            )
        return lower.index(want)
    return next((lower.index(a) for a in ALIASES[field] if a in lower), None)


class _RawCsv:
    """One quote or trade per row, in the column names of common formats (or --columns)."""

    def __init__(self, path: Path, header: list[str], columns: dict[str, str], screen: Screen):
        self.path, self.header, self.screen = path, header, screen
        self.at = at = {f: _find(header, f, columns) for f in ALIASES}
        for need in ("ts", "symbol"):
            if at[need] is None:
                raise UserError(
                    f"{path} line 1: no {need} column (known names: {', '.join(ALIASES[need])});"
                    f" map yours with --columns {need}=NAME"
                )
        if (at["bid"] is None or at["ask"] is None) and at["price"] is None:
            raise UserError(
                f"{path} line 1: neither bid/ask nor price columns; map them with --columns"
                " bid=...,ask=... or price=...,size=..."
            )
        self.names = _Names(path)
        self.scale: int | None = None  # integer timestamps: ns per unit; None: ISO text
        self.iso: bool | None = None
        self.parts: list[_Part] = []

    def add(self, rows: list[list[str]], lines: NDArray[np.int64]) -> None:
        width, n = len(self.header), len(rows)
        for r, line in zip(rows, lines.tolist(), strict=True):
            if len(r) < width:
                raise UserError(
                    f"{self.path} line {line}: {len(r)} fields, the header names {width}"
                )
        at = self.at
        ts_at, sym_at = at["ts"], at["symbol"]
        assert ts_at is not None and sym_at is not None
        ts, keep = self._timestamps([r[ts_at] for r in rows], lines)
        cols: dict[str, NDArray[np.float64]] = {}
        for f in (*_PRICES, *_SIZES):
            j = at[f]
            if j is None:
                cols[f] = np.full(n, np.nan)
                continue
            v, given = _floats(self.path, [r[j] for r in rows], lines, self.header[j])
            if f in _SIZES:
                bad = given & ~((v >= 0) & (v <= _MAX_SIZE))  # NaN too
                why = f"{f} out of range (0 to {_MAX_SIZE})"
            else:
                bad = given & ~(np.abs(v) <= MAX_PRICE)
                why = price_reason(f)
            self.screen.drop(bad & keep, lines, why)
            keep &= ~bad
            cols[f] = v
        quote = ~np.isnan(cols["bid"]) & ~np.isnan(cols["ask"])
        trade = ~np.isnan(cols["price"])
        empty = keep & ~quote & ~trade
        self.screen.drop(empty, lines, "neither a quote (bid and ask) nor a trade (price)")
        crossed = keep & quote & (cols["bid"] > cols["ask"])
        self.screen.drop(crossed, lines, "crossed quote (bid above ask)")
        keep &= ~empty & ~crossed
        side = np.zeros(n, np.int8)
        if (j := at["side"]) is not None:
            text = np.char.lower(np.array([r[j].strip() for r in rows], dtype=str))
            side[np.isin(text, ("buy", "b", "bid"))] = 1
            side[np.isin(text, ("sell", "s", "ask"))] = -1
        nameless = keep & np.array([not r[sym_at].strip() for r in rows], np.bool_)
        self.screen.drop(nameless, lines, "no symbol")
        keep &= ~nameless
        kept = [r[sym_at] for r, k in zip(rows, keep.tolist(), strict=True) if k]
        sym = self.names.ids(kept, lines[keep])
        self.parts.append((sym, ts[keep], {f: c[keep] for f, c in cols.items()}, side[keep]))

    def _timestamps(
        self, texts: list[str], lines: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Integers (s, ms, us or ns since the epoch, told by the file's first) or ISO 8601, as
        ns; and which rows keep theirs (the rest are out of range: 1970 to 2262)."""
        vals = [v.strip() for v in texts]
        if self.iso is None:
            self.iso = not vals[0].lstrip("-").isdigit()
        if self.iso:
            ns, bad = self._iso(vals, lines)
        else:
            raw, bad = _ints(self.path, vals, lines, "ts", True)
            if self.scale is None:
                first = abs(int(vals[0])) or 1
                self.scale = next((k for k, over in _TS_SCALES if first > over), 10**9)
            bad |= (raw < 0) | (raw > (2**63 - 1) // self.scale)
            ns = np.where(bad, 0, raw).astype(np.int64) * self.scale
        self.screen.drop(bad, lines, "timestamp out of range (1970 to 2262)")
        return ns, ~bad

    def _iso(
        self, vals: list[str], lines: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        text = [v.rstrip("Z") for v in vals]
        try:
            ns = np.array(text, "datetime64[ns]").astype(np.int64)
            secs = np.array(text, "datetime64[s]").astype(np.int64)  # ns wraps beyond 2262
        except ValueError:
            ns, secs = np.empty(len(text), np.int64), np.empty(len(text), np.int64)
            for i, v in enumerate(text):
                try:
                    ns[i] = np.datetime64(v, "ns").astype(np.int64)
                    secs[i] = np.datetime64(v, "s").astype(np.int64)
                except ValueError:
                    raise UserError(
                        f"{self.path} line {lines[i]}: field 'ts': expected an ISO time or an"
                        f" integer since the epoch, got {vals[i]!r}"
                    ) from None
        bad = (secs < 0) | (secs >= _MAX_TS_S) | (ns < 0)
        return np.where(bad, 0, ns), bad

    def result(self) -> Raw:
        none = {f: np.empty(0) for f in (*_PRICES, *_SIZES)}
        empty = (np.empty(0, np.intp), np.empty(0, np.int64), none, np.zeros(0, np.int8))
        parts = self.parts or [empty]
        sym = np.concatenate([p[0] for p in parts])
        ts = np.concatenate([p[1] for p in parts])
        cols = {f: np.concatenate([p[2][f] for p in parts]) for f in (*_PRICES, *_SIZES)}
        side = np.concatenate([p[3] for p in parts])
        return Raw(list(self.names.index), sym, ts, cols, side)


__all__ = ["CHUNK_ROWS", "read_csv"]
