"""Tardis-shaped book CSVs for measuring and testing the replay: `incremental_book_L2` and
`book_snapshot_25` files of several symbols, as Tardis writes them.

Each symbol keeps a real book (price units -> amount a side, never crossed): its first rows are
a whole book (is_snapshot true), then changes: a level's new amount near the best, a removal
(amount 0), a new level (inside the spread too); now and then a reconnect writes a whole book
again mid-file. Rows come in bursts at one timestamp (one exchange message), timestamps in
microseconds, local_timestamp a little later. Amounts use up to 8 decimals, prices 2. Seeded:
same arguments, same bytes. Run as a script: `python -m tickwire.simulators._tardis_gen OUT ROWS
[--snapshot]`. numpy only.
"""

from __future__ import annotations

import argparse
import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np

L2_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
T0_US = 1_704_067_200_000_000  # 2024-01-01 00:00:00 UTC
SYMBOLS = (("BTC-USD", 4200000), ("ETH-USD", 230000), ("SOL-USD", 10150), ("DOGE-USD", 900))
_DEPTH = 60  # levels a side of each whole book
_RESNAP_EVERY = 40_000  # rows between reconnects (a whole book again, mid-file)


def _amount(rng: np.random.Generator) -> str:
    """An amount as Tardis writes it: a decimal of up to 8 places, no trailing zeros."""
    units = int(rng.pareto(1.5) * 10 ** int(rng.integers(2, 9))) + 1
    text = f"{units / 10**8:.8f}".rstrip("0").rstrip(".")
    return text


class _Book:
    def __init__(self, mid: int, rng: np.random.Generator) -> None:
        self.levels: tuple[dict[int, str], dict[int, str]] = ({}, {})
        for k in range(_DEPTH):
            self.levels[0][mid - 1 - k * int(rng.integers(1, 3))] = _amount(rng)
            self.levels[1][mid + 1 + k * int(rng.integers(1, 3))] = _amount(rng)

    def best(self, side: int) -> int:
        return max(self.levels[0]) if side == 0 else min(self.levels[1])

    def change(self, rng: np.random.Generator) -> tuple[int, int, str]:
        side = int(rng.integers(2))
        levels, best = self.levels[side], self.best(side)
        sign = -1 if side == 0 else 1
        what = rng.random()
        if what < 0.3 and len(levels) > 5:  # a removal near the best
            u = best + sign * int(rng.integers(0, 6))
            u = u if u in levels else best
            del levels[u]
            return side, u, "0"
        if what < 0.4:  # a new level, inside the spread at times
            spread = self.best(1) - self.best(0)
            u = best - sign * int(rng.integers(1, spread)) if spread > 1 else best + sign
            u = u if spread > 1 else best + sign * int(rng.integers(1, 4))
        else:  # a level's new amount, near the best
            u = best + sign * int(rng.geometric(0.3) - 1)
        levels[u] = _amount(rng)
        return side, u, levels[u]


def l2_lines(rows: int, seed: int = 7) -> Iterator[str]:
    """An incremental_book_L2 file of about `rows` rows (whole books first), line by line."""
    rng = np.random.default_rng(seed)
    books = {name: _Book(mid, rng) for name, mid in SYMBOLS}
    yield L2_HEADER + "\n"
    us, done = T0_US, 0
    for name, book in books.items():
        yield from _whole(name, book, us, "true")
        done += 2 * _DEPTH
    names = [n for n, _ in SYMBOLS]
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    while done < rows:
        us += int(rng.integers(0, 3000))
        name = names[int(rng.choice(4, p=weights))]
        book = books[name]
        if done // _RESNAP_EVERY != (done + 8) // _RESNAP_EVERY:  # a reconnect
            lines = list(_whole(name, book, us, "true"))
            yield from lines
            done += len(lines)
            continue
        for _ in range(int(rng.integers(1, 8))):  # one message: a burst at one timestamp
            side, u, amount = book.change(rng)
            s = "bid" if side == 0 else "ask"
            yield f"coinbase,{name},{us},{us + 350},false,{s},{u / 100:.2f},{amount}\n"
            done += 1


def _whole(name: str, book: _Book, us: int, snap: str) -> Iterator[str]:
    for side, s in ((1, "ask"), (0, "bid")):
        for u in sorted(book.levels[side], reverse=side == 0):
            amount = book.levels[side][u]
            yield f"coinbase,{name},{us},{us + 350},{snap},{s},{u / 100:.2f},{amount}\n"


def snapshot_lines(rows: int, seed: int = 7, depth: int = 25) -> Iterator[str]:
    """A book_snapshot_`depth` file of `rows` rows (each a whole book, fewer levels allowed)."""
    rng = np.random.default_rng(seed)
    books = {name: _Book(mid, rng) for name, mid in SYMBOLS}
    cols = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for k in range(depth):
        cols += [f"asks[{k}].price", f"asks[{k}].amount", f"bids[{k}].price", f"bids[{k}].amount"]
    yield ",".join(cols) + "\n"
    us = T0_US
    names = [n for n, _ in SYMBOLS]
    for _ in range(rows):
        us += int(rng.integers(1, 5000))
        name = names[int(rng.integers(len(names)))]
        book = books[name]
        for _ in range(int(rng.integers(1, 6))):
            book.change(rng)
        asks = sorted(book.levels[1])[:depth]
        bids = sorted(book.levels[0], reverse=True)[:depth]
        fields = ["coinbase", name, str(us), str(us + 350)]
        for k in range(depth):
            for side, got in ((1, asks), (0, bids)):
                if k < len(got):
                    fields += [f"{got[k] / 100:.2f}", book.levels[side][got[k]]]
                else:
                    fields += ["", ""]
        yield ",".join(fields) + "\n"


def write(path: Path, rows: int, *, snapshot: bool = False, seed: int = 7) -> Path:
    """Write a generated file (gzip if `path` ends in .gz)."""
    lines = snapshot_lines(rows, seed) if snapshot else l2_lines(rows, seed)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 65536:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("rows", type=int)
    parser.add_argument("--snapshot", action="store_true", help="book_snapshot_25 rows")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    write(args.out, args.rows, snapshot=args.snapshot, seed=args.seed)


if __name__ == "__main__":
    main()
