"""The replay of a Tardis `incremental_book_L2` CSV, per row: the wait for its first batch beside
a plain quotes CSV's, and the whole replay streamed beside the file loaded whole.

Both files are Tardis-shaped and of the same number of rows, written once into a temporary
folder (`simulators._tardis_gen` makes the book file: several symbols, whole books first and
mid-file, bursts of changes and removals), and opened by `open_replay` as `serve --replay` does.
"load" is what a user waits for before the first batch goes out: `open_replay` and the first
step at speed 0. A book file alone is streamed (its first pass reads every row, the records are
made as the replay goes), the quotes file is loaded whole into ticks. The second row is the
whole replay at speed 0, open to the last level update, streamed vs loaded whole
(`stream=False`, the reader before streaming). Time per row, the faster of two runs each.
Imports no trio.
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


def replay_load_rows(quick: bool) -> list[Row]:
    rows = 40_000 if quick else 400_000
    with tempfile.TemporaryDirectory() as tmp:
        book = gen.write(Path(tmp) / "incremental_book_L2.csv", rows)
        quotes = _quotes(Path(tmp) / "quotes.csv", rows)
        n_book = sum(1 for _ in book.open()) - 1
        book_s = _best(book, drain=False)
        quotes_s = _best(quotes, drain=False)
        streamed_s = _best(book, drain=True)
        whole_s = _best(book, drain=True, stream=False)
    return [
        row(
            "replay: load a Tardis incremental_book_L2 CSV (to the first batch): us per row",
            book_s / n_book * 1e6,
            "us/row",
            "a Tardis quotes CSV of as many rows",
            quotes_s / rows * 1e6,
            higher=False,
            note=f"{n_book:,} rows, 4 symbols, books and their tops as ticks",
        ),
        row(
            "replay: a Tardis incremental_book_L2 CSV at speed 0, streamed: us per row",
            streamed_s / n_book * 1e6,
            "us/row",
            "the file loaded whole",
            whole_s / n_book * 1e6,
            higher=False,
            note="open to the last level update; streamed, memory stays flat in the file's"
            " size, and every row is parsed once more (the first pass)",
        ),
    ]


def _best(path: Path, *, drain: bool, stream: bool = True) -> float:
    """The faster of two runs: open and the first step, or (`drain`) the whole replay."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        replay = open_replay([path], speed=0, stream=stream)
        step = replay.step_book if replay.book is not None else replay.step
        step(0)
        while drain and not replay.finished:
            step(0)
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
