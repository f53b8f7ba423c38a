"""Reading ticks for replay: tickwire's own files, and real quotes/trades CSVs.

Own files are what `tickwire simulate` and `tickwire record` write: `.parquet` (symbol column,
every TICK_DTYPE field, the universe in the metadata), `.npy` (TICK_DTYPE records, the universe
in FILE.universe.csv beside it) and `.csv` (symbol, then every field). Real data is one row per
quote or trade, e.g. Tardis `quotes` (timestamp, symbol, bid_price, bid_amount, ask_price,
ask_amount) and `trades` (timestamp, symbol, side, price, amount) CSVs, gzip allowed; other
column names map with `columns` (`ts=time,symbol=ticker,...`). A bad file is one UserError
naming the file, the line and the field. numpy only (pyarrow lazily).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import UserError
from .market import _decimals
from .ticks import TICK_DTYPE, TickBatch, TickFlag
from .universe import Universe

# The canonical column of real data, and the names it goes by in common formats.
ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "ts_event", "sip_timestamp", "datetime", "t"),
    "symbol": ("symbol", "sym", "ticker", "instrument"),
    "bid": ("bid", "bid_price", "bp", "bid_px"),
    "ask": ("ask", "ask_price", "ap", "ask_px"),
    "bid_size": ("bid_size", "bid_amount", "bs", "bid_sz", "bid_qty"),
    "ask_size": ("ask_size", "ask_amount", "as", "ask_sz", "ask_qty"),
    "price": ("price", "trade_price", "px"),
    "size": ("size", "amount", "qty", "quantity", "trade_size", "sz"),
    "side": ("side", "aggressor_side", "taker_side"),
}
_OWN_CSV = ["symbol", *(TICK_DTYPE.names or ())]


@dataclass
class Own:
    """Records of a tickwire file; `sym` indexes `names`."""

    names: list[str]
    records: TickBatch
    universe: Universe | None


@dataclass
class Raw:
    """Rows of a quotes/trades CSV, absent values NaN; `sym` indexes `names`."""

    names: list[str]
    sym: NDArray[np.intp]
    ts: NDArray[np.int64]
    cols: dict[str, NDArray[np.float64]]  # bid, ask, bid_size, ask_size, price, size
    side: NDArray[np.int8]  # +1 buy, -1 sell, 0 unknown


def parse_columns(text: str | None) -> dict[str, str]:
    """`ts=time,symbol=ticker` -> {"ts": "time", "symbol": "ticker"}."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, eq, name = part.partition("=")
        key = key.strip().lower()
        if not eq or key not in ALIASES or not name.strip():
            raise UserError(
                f"--columns takes FIELD=COLUMN pairs with FIELD one of {', '.join(ALIASES)},"
                f" got {part.strip()!r}"
            )
        out[key] = name.strip()
    return out


def read(path: Path, columns: dict[str, str]) -> Own | Raw:
    name = path.name.lower()
    if not path.exists():
        raise UserError(f"replay file {path} not found")
    if name.endswith(".parquet"):
        return _read_parquet(path)
    if name.endswith(".npy"):
        return _read_npy(path)
    if name.endswith((".csv", ".csv.gz")):
        return _read_csv(path, columns)
    raise UserError(f"{path}: replay reads .parquet, .npy, .csv or .csv.gz files")


def _read_parquet(path: Path) -> Own:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path} needs pyarrow: pip install 'tickwire[parquet]'") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many kinds for a bad or truncated file
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [f for f in _OWN_CSV if f not in table.column_names]
    if missing:
        raise UserError(f"{path}: not a tickwire file: no column {missing[0]!r}")
    records = np.zeros(table.num_rows, TICK_DTYPE)
    for f in TICK_DTYPE.names or ():
        records[f] = table.column(f).to_numpy()
    sym = table.column("symbol").combine_chunks()
    universe = None
    meta = table.schema.metadata or {}
    if b"tickwire.universe" in meta:
        universe = Universe.from_reference(json.loads(meta[b"tickwire.universe"]))
    if hasattr(sym, "indices"):
        names = [str(s) for s in sym.dictionary.to_pylist()]
        records["sym"] = sym.indices.to_numpy(zero_copy_only=False)
    else:
        uniq, idx = np.unique(np.asarray(sym.to_pylist(), dtype=str), return_inverse=True)
        names, records["sym"] = [str(s) for s in uniq], idx
    return Own(names, records, universe)


def _read_npy(path: Path) -> Own:
    try:
        records = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None
    if records.dtype != TICK_DTYPE:
        raise UserError(f"{path}: not a tickwire .npy (records of dtype {records.dtype})")
    side = path.with_suffix(".universe.csv")
    if not side.exists():
        raise UserError(f"{path}: its universe {side.name} is missing (written beside it)")
    universe = Universe.load(side)
    return Own(list(universe.symbols), np.array(records), universe)


def _open_text(path: Path) -> io.TextIOBase:
    try:
        if path.name.lower().endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_csv(path: Path, columns: dict[str, str]) -> Own | Raw:
    with _open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise UserError(f"{path} is empty; expected a header line") from None
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            raise UserError(f"{path}: cannot read ({exc})") from None
        try:
            rows = list(reader)
        except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
            raise UserError(f"{path} line {reader.line_num + 1}: cannot read ({exc})") from None
    if [h.lower() for h in header] == _OWN_CSV and not columns:
        return _own_csv(path, rows)
    return _raw_csv(path, header, rows, columns)


def _column(path: Path, rows: list[list[str]], j: int, field: str, kind: str) -> NDArray[Any]:
    """Column j as numbers; a bad value is an error naming its line (header = line 1)."""
    values = [r[j].strip() if j < len(r) else "" for r in rows]
    if kind == "float":
        try:
            return np.array([v if v else "nan" for v in values], np.float64)
        except ValueError:
            pass
    else:
        try:
            return np.array(values, np.int64)
        except (ValueError, OverflowError):
            pass
    for i, v in enumerate(values):
        try:
            float(v) if kind == "float" and v else int(v)
        except (ValueError, OverflowError):
            what = "a number" if kind == "float" else "an integer"
            raise UserError(
                f"{path} line {i + 2}: field {field!r}: expected {what}, got {v!r}"
            ) from None
    raise AssertionError("unreachable: some value failed to parse")


def _own_csv(path: Path, rows: list[list[str]]) -> Own:
    records = np.zeros(len(rows), TICK_DTYPE)
    for i, r in enumerate(rows):
        if len(r) != len(_OWN_CSV):
            raise UserError(f"{path} line {i + 2}: {len(r)} fields, the header names 12")
    for j, f in enumerate(_OWN_CSV[1:], start=1):
        kind = "float" if TICK_DTYPE[f].kind == "f" else "int"
        col = _column(path, rows, j, f, kind)
        if kind == "int" and (col.min(initial=0) < 0 and TICK_DTYPE[f].kind == "u"):
            bad = int(np.flatnonzero(col < 0)[0])
            raise UserError(f"{path} line {bad + 2}: field {f!r}: must be >= 0")
        records[f] = col
    names, sym = np.unique(np.array([r[0] for r in rows], object), return_inverse=True)
    records["sym"] = sym
    return Own([str(n) for n in names], records, None)


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


def _raw_csv(path: Path, header: list[str], rows: list[list[str]], columns: dict[str, str]) -> Raw:
    at = {f: _find(header, f, columns) for f in ALIASES}
    for need in ("ts", "symbol"):
        if at[need] is None:
            raise UserError(
                f"{path} line 1: no {need} column (known names: {', '.join(ALIASES[need])});"
                f" map yours with --columns {need}=NAME"
            )
    quotes = at["bid"] is not None and at["ask"] is not None
    if not quotes and at["price"] is None:
        raise UserError(
            f"{path} line 1: neither bid/ask nor price columns; map them with --columns"
            " bid=...,ask=... or price=...,size=..."
        )
    n = len(rows)
    for i, r in enumerate(rows):
        if len(r) < len(header):
            raise UserError(f"{path} line {i + 2}: {len(r)} fields, the header names {len(header)}")
    ts_at, sym_at = at["ts"], at["symbol"]
    assert ts_at is not None and sym_at is not None
    ts = _timestamps(path, [r[ts_at] for r in rows])
    names, sym = np.unique(np.array([r[sym_at] for r in rows], dtype=str), return_inverse=True)
    cols = {
        f: _column(path, rows, j, header[j], "float") if (j := at[f]) is not None else _nan(n)
        for f in ("bid", "ask", "bid_size", "ask_size", "price", "size")
    }
    side = np.zeros(n, np.int8)
    if (j := at["side"]) is not None:
        text = np.char.lower(np.array([r[j].strip() for r in rows], dtype=str))
        side[np.isin(text, ("buy", "b", "bid"))] = 1
        side[np.isin(text, ("sell", "s", "ask"))] = -1
    return Raw([str(s) for s in names], sym.astype(np.intp), ts, cols, side)


def _nan(n: int) -> NDArray[np.float64]:
    return np.full(n, np.nan)


def _timestamps(path: Path, values: list[str]) -> NDArray[np.int64]:
    """Integers (s, ms, us or ns since the epoch, told by size) or ISO 8601 text, as ns."""
    values = [v.strip() for v in values]
    if not values:
        return np.empty(0, np.int64)
    if values[0].lstrip("-").isdigit():
        raw = _column(path, [[v] for v in values], 0, "ts", "int")
        first = abs(int(raw[0])) or 1
        scale = (
            1 if first > 1e17 else 1_000 if first > 1e14 else 1_000_000 if first > 1e11 else 10**9
        )
        return raw * scale
    try:
        return np.array([v.rstrip("Z") for v in values], "datetime64[ns]").astype(np.int64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                np.datetime64(v.rstrip("Z"), "ns")
            except ValueError:
                raise UserError(
                    f"{path} line {i + 2}: field 'ts': expected an ISO time or an integer"
                    f" since the epoch, got {v!r}"
                ) from None
        raise


def build_raw(parts: list[Raw], names: list[str]) -> tuple[TickBatch, NDArray[np.float64]]:
    """One record per row, in time order (stable): quotes and trades carried forward per symbol;
    and each symbol's size unit (sizes and volume are integer counts of it: see `size_units`)."""
    index = {s: i for i, s in enumerate(names)}
    sym = np.concatenate(
        [np.array([index[nm] for nm in p.names], np.intp)[p.sym] for p in parts]
        + [np.empty(0, np.intp)]
    )
    ts = np.concatenate([p.ts for p in parts])
    cols = {f: np.concatenate([p.cols[f] for p in parts]) for f in parts[0].cols}
    side = np.concatenate([p.side for p in parts])
    order = np.argsort(ts, kind="stable")
    sym, ts, side = sym[order], ts[order], side[order]
    cols = {f: c[order] for f, c in cols.items()}
    n = len(ts)
    is_quote = ~np.isnan(cols["bid"]) & ~np.isnan(cols["ask"])
    is_trade = ~np.isnan(cols["price"])
    # per symbol, in time order: a stable sort by symbol makes each symbol one segment
    by = np.argsort(sym, kind="stable")
    s = sym[by]
    seg = np.ones(n, np.bool_)
    seg[1:] = s[1:] != s[:-1]
    seg_start = np.maximum.accumulate(np.where(seg, np.arange(n), 0))

    def carried(mask: NDArray[np.bool_]) -> NDArray[np.intp]:
        """For each row (symbol order), the latest row at or before it where mask holds, or -1."""
        idx = np.where(mask[by], np.arange(n), -1)
        last = np.maximum.accumulate(idx) if n else idx
        return np.where(last >= seg_start, last, -1)

    q, t = carried(is_quote), carried(is_trade)

    def take(col: NDArray[np.float64], at: NDArray[np.intp]) -> NDArray[np.float64]:
        out = np.zeros(n)
        ok = at >= 0
        out[ok] = col[by][at[ok]]
        return np.nan_to_num(out)

    unit = size_units(sym, cols, len(names))
    for f in ("bid_size", "ask_size", "size"):  # in units: 0.0123 BTC is 123 units of 0.0001
        cols[f] = cols[f] / unit[sym]
    size_by = np.nan_to_num(np.where(is_trade, cols["size"], 0.0))[by]
    csum = np.cumsum(size_by)
    volume = csum - np.concatenate(([0.0], csum))[seg_start]  # since each symbol's first row
    out = np.zeros(n, TICK_DTYPE)
    rec = out[by] if n else out
    rec["ts"], rec["sym"] = ts[by], s
    rec["seq"] = np.arange(n) - seg_start + 1
    rec["bid"], rec["ask"] = take(cols["bid"], q), take(cols["ask"], q)
    rec["bid_size"] = np.round(take(cols["bid_size"], q)).clip(0, 2**32 - 1)
    rec["ask_size"] = np.round(take(cols["ask_size"], q)).clip(0, 2**32 - 1)
    rec["last"] = take(cols["price"], t)
    rec["last_size"] = np.round(take(cols["size"], t)).clip(0, 2**32 - 1)
    rec["volume"] = np.round(volume).clip(0, None)
    trade = is_trade[by]
    sd = side[by]
    flags = np.where(trade, int(TickFlag.TRADE), 0)
    flags |= np.where(trade & (sd > 0), int(TickFlag.BUY), 0)
    flags |= np.where(trade & (sd < 0), int(TickFlag.SELL), 0)
    rec["flags"] = flags
    out[by] = rec
    return out, unit


def size_units(
    sym: NDArray[np.intp], cols: dict[str, NDArray[np.float64]], n: int
) -> NDArray[np.float64]:
    """Each symbol's size unit, 10**-k: k the most decimals its sizes use (crypto amounts such as
    0.0123), at most 8 and fewer if its largest size would not fit the record's u4 in units.
    Integer sizes (shares) get 1, so stock data is unchanged. The binary layout stays as it is:
    sizes are integers, and the `symbols` reply says what one is worth."""
    places = np.zeros(n, np.intp)
    top = np.zeros(n)
    for f in ("bid_size", "ask_size", "size"):
        v = np.abs(np.nan_to_num(cols[f]))
        if not len(v):
            continue
        values, inverse = np.unique(v, return_inverse=True)  # few distinct sizes: cheap
        k = _decimals(np.where(values > 0, values, 1.0))[inverse.reshape(-1)]
        np.maximum.at(places, sym, k)
        np.maximum.at(top, sym, v)
    fits = np.floor(np.log10(_MAX_U4 / np.maximum(top, 1.0))).astype(np.intp)
    return 1.0 / 10.0 ** np.clip(np.minimum(places, fits), 0, 8).astype(np.float64)  # 1e-5 exact


_MAX_U4 = float(2**32 - 1)
