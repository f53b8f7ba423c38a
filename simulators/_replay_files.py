"""Reading ticks for replay: tickwire's own files, and real quotes/trades CSVs.

Own files are what `tickwire simulate` and `tickwire record` write: `.parquet` (symbol column,
every TICK_DTYPE field, the universe in the metadata), `.npy` (TICK_DTYPE records, the universe
in FILE.universe.csv beside it) and `.csv` (symbol, then every field). Real data is one row per
quote or trade, e.g. Tardis `quotes` (timestamp, symbol, bid_price, bid_amount, ask_price,
ask_amount) and `trades` (timestamp, symbol, side, price, amount) CSVs, gzip allowed; other
column names map with `columns` (`ts=time,symbol=ticker,...`). CSVs stream through
`_replay_csv`. A malformed file is one UserError naming the file, the line and the field; rows
that parse but cannot be replayed are skipped and counted, or refused with `strict`
(`_replay_rows.Screen`). numpy only (pyarrow lazily).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._model import decimals
from ._replay_csv import read_csv
from ._replay_parts import ALIASES, OWN_CSV, Own, Raw
from ._replay_rows import Screen, out_of_range, screen_records
from .errors import UserError
from .ticks import TICK_DTYPE, TickBatch, TickFlag
from .universe import Universe
from .writers import EXTRAS


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


def read(path: Path, columns: dict[str, str], *, strict: bool = False) -> Own | Raw:
    """One file's rows; bad rows skipped and counted in a log line, or, `strict`, refused."""
    name = path.name.lower()
    if not path.exists():
        raise UserError(f"replay file {path} not found")
    if name.endswith(".parquet"):
        return _screened(*_read_parquet(path), path, strict)
    if name.endswith(".npy"):
        return _screened(*_read_npy(path), path, strict)
    if name.endswith((".csv", ".csv.gz")):
        return read_csv(path, columns, strict=strict)
    raise UserError(f"{path}: replay reads .parquet, .npy, .csv or .csv.gz files")


def read_parquet(
    path: Path, columns: Sequence[str], kind: str
) -> tuple[Any, list[str], NDArray[np.intp], Universe | None]:
    """A tickwire Parquet file (ticks or a book): its pyarrow table, its symbols' names and each
    row's index into them, and the universe in its metadata. One UserError when pyarrow is
    missing, the file is not Parquet, or it lacks one of `columns` ("not a {kind}")."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path} needs pyarrow: {EXTRAS['parquet']}") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many kinds for a bad or truncated file
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [f for f in columns if f not in table.column_names]
    if missing:
        raise UserError(f"{path}: not a {kind}: no column {missing[0]!r}")
    sym = table.column("symbol").combine_chunks()
    if hasattr(sym, "indices"):
        names = [str(s) for s in sym.dictionary.to_pylist()]
        index = sym.indices.to_numpy(zero_copy_only=False)
    else:
        uniq, index = np.unique(np.asarray(sym.to_pylist(), dtype=str), return_inverse=True)
        names = [str(s) for s in uniq]
    meta = table.schema.metadata or {}
    universe = None
    if b"tickwire.universe" in meta:
        universe = Universe.from_reference(json.loads(meta[b"tickwire.universe"]))
    return table, names, index, universe


def _read_parquet(path: Path) -> tuple[Own, NDArray[np.bool_]]:
    """The records, and which rows hold a value their field cannot (an int column too wide)."""
    table, names, index, universe = read_parquet(path, OWN_CSV, "tickwire file")
    records = np.zeros(table.num_rows, TICK_DTYPE)
    wrong = np.zeros(table.num_rows, np.bool_)
    for f in TICK_DTYPE.names or ():
        values = table.column(f).to_numpy()
        bad = out_of_range(values, TICK_DTYPE[f])  # a wider column would wrap silently
        records[f][~bad] = values[~bad]
        wrong |= bad
    records["sym"] = index
    return Own(names, records, universe), wrong


def _read_npy(path: Path) -> tuple[Own, NDArray[np.bool_]]:
    try:
        records = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None
    if records.dtype != TICK_DTYPE:
        raise UserError(f"{path}: not a tickwire .npy (records of dtype {records.dtype})")
    if records.ndim != 1:
        raise UserError(f"{path}: not a tickwire .npy (a {records.ndim}-d array, not a list)")
    side = path.with_suffix(".universe.csv")
    if not side.exists():
        raise UserError(f"{path}: its universe {side.name} is missing (written beside it)")
    universe = Universe.load(side)
    fine = np.zeros(len(records), np.bool_)  # a .npy holds TICK_DTYPE itself: nothing wraps
    return Own(list(universe.symbols), np.array(records), universe), fine


def _screened(part: Own, wrong: NDArray[np.bool_], path: Path, strict: bool) -> Own:
    """A tickwire file's records that can be replayed, the others skipped or refused."""
    screen = Screen(path, strict=strict, unit="record")
    rows = np.arange(1, len(part.records) + 1, dtype=np.int64)
    screen.drop(wrong, rows, "a value out of its field's range")
    keep = ~wrong & (part.records["sym"] < len(part.names))
    screen.drop(~keep & ~wrong, rows, f"symbol id beyond the {len(part.names)} of its universe")
    screen.drop(~keep, rows, f"symbol id beyond the {len(part.names)} of its universe")
    keep[keep] = screen_records(part.records[keep], rows[keep], screen)
    screen.report()
    return part if keep.all() else Own(part.names, part.records[keep], part.universe)


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
        k = decimals(np.where(values > 0, values, 1.0))[inverse.reshape(-1)]
        np.maximum.at(places, sym, k)
        np.maximum.at(top, sym, v)
    fits = np.floor(np.log10(_MAX_U4 / np.maximum(top, 1.0))).astype(np.intp)
    return 1.0 / 10.0 ** np.clip(np.minimum(places, fits), 0, 8).astype(np.float64)  # 1e-5 exact


_MAX_U4 = float(2**32 - 1)
