"""The replay's load of a Tardis `incremental_book_L2` CSV, per row, beside a plain quotes CSV.

Both files are Tardis-shaped and of the same number of rows, written once into a temporary
folder (`simulators._tardis_gen` makes the book file: several symbols, whole books first and
mid-file, bursts of changes and removals), and loaded by `open_replay` as `serve --replay` does:
the book file into level records and the ticks of its tops, the quotes file into ticks. Time per
row, the faster of two loads each. Imports no trio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from tickwire.simulators import _tardis_gen as gen
from tickwire.simulators.replay import open_replay

from ._table import Row, row

_QUOTES = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"


def replay_load_row(quick: bool) -> Row:
    rows = 40_000 if quick else 400_000
    with tempfile.TemporaryDirectory() as tmp:
        book = gen.write(Path(tmp) / "incremental_book_L2.csv", rows)
        quotes = _quotes(Path(tmp) / "quotes.csv", rows)
        n_book = sum(1 for _ in book.open()) - 1
        book_s = _best_load(book)
        quotes_s = _best_load(quotes)
    return row(
        "replay: load a Tardis incremental_book_L2 CSV: us per row",
        book_s / n_book * 1e6,
        "us/row",
        "a Tardis quotes CSV of as many rows",
        quotes_s / rows * 1e6,
        higher=False,
        note=f"{n_book:,} rows, 4 symbols, books and their tops as ticks",
    )


def _best_load(path: Path) -> float:
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        open_replay([path], speed=0)
        best = min(best, time.perf_counter() - t0)
    return best


def _quotes(path: Path, rows: int) -> Path:
    """Tardis `quotes` rows of the generator's symbols: mids near theirs, sizes in decimals."""
    rng = np.random.default_rng(3)
    names = np.array([n for n, _ in gen.SYMBOLS])
    mids = np.array([m for _, m in gen.SYMBOLS])
    sym = rng.integers(0, len(names), rows)
    mid = mids[sym] + rng.integers(-5, 6, rows)
    us = gen.T0_US + np.cumsum(rng.integers(0, 3000, rows))
    bid_amt = rng.integers(1, 10**6, rows) / 1e4
    ask_amt = rng.integers(1, 10**6, rows) / 1e4
    with path.open("w") as out:
        out.write(_QUOTES)
        out.writelines(
            f"coinbase,{n},{t},{t + 350},{a:g},{(m + 1) / 100:.2f},{(m - 1) / 100:.2f},{b:g}\n"
            for n, t, a, m, b in zip(
                names[sym].tolist(),
                us.tolist(),
                ask_amt.tolist(),
                mid.tolist(),
                bid_amt.tolist(),
                strict=True,
            )
        )
    return path
