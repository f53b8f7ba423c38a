"""The replay source `Replay`: recorded or real ticks served like the model's, `step(until_ns)`.

`Replay` has the shape of `Market` for the server: `step(until_ns)` returns every record due by
then, in event order, and `snapshot()` the latest released record per symbol. Time maps linearly:
the first step anchors the data's first timestamp to the caller's clock, and `speed` data seconds
pass per second (1 real time, 10 ten times). `speed=0` releases up to `batch_max` records per step
whatever the time: the server then steps only once every reader has caught up, so the stream
goes as fast as the clients read (`paced_by_readers`). `loop` starts over after the end, with
timestamps, seqs and volumes continued so that they keep increasing. Records keep their own `ts`
(the time they happened). Same files and flags, same stream. With a book file
(`bookfile`; `FILE.book.parquet` beside `FILE.parquet` is found by itself) the replay has books:
`step_book` releases the level updates due with the ticks (`_replay_book`), as `Market.step_book`
does. numpy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._replay_book import ReplayBook
from .durations import DurationError, parse_duration
from .errors import UserError
from .ticks import TICK_DTYPE, TickBatch, TickFlag
from .universe import Universe

_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))
BATCH_MAX = 4096  # records per step at speed 0
BOOK_BATCH_MAX = 1024  # level updates per step at speed 0
_LOOP_GAP_NS = 1_000_000  # between the end of one pass and the start of the next
_LOOP_TOP = 2**62  # seq/volume a looped file may start from: passes add to them, u8 must not wrap


class Replay:
    """Serve `records` (TICK_DTYPE, sorted by ts, on `universe`'s tick grid) again."""

    def __init__(
        self,
        records: TickBatch,
        universe: Universe,
        *,
        speed: float = 1.0,
        loop: bool = False,
        batch_max: int = BATCH_MAX,
        book: ReplayBook | None = None,
    ) -> None:
        """`book`: the order books to replay with the ticks (same symbol ids)."""
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        if len(records) == 0:
            raise UserError("nothing to replay: the files (within --start/--end) hold no ticks")
        top = max(int(records["seq"].max()), int(records["volume"].max()))
        if loop and top > _LOOP_TOP:
            raise UserError(
                f"--loop keeps seq and volume increasing, and this data's reach {top}: they would"
                f" wrap past 2**64 (at most {_LOOP_TOP} leaves room); replay it without --loop"
            )
        if loop and book is not None:
            raise UserError(
                "--loop does not replay order books (a book cannot start over where it ended);"
                " replay the books without --loop, or the ticks alone"
            )
        self.universe = universe
        self.book = book
        self._limit: int | None = None  # the data time the last step released up to
        self.speed = speed
        self.loop = loop
        self.paced_by_readers = speed == 0
        self.batch_max = batch_max
        self._records = records
        self._ts = np.ascontiguousarray(records["ts"])
        self._t0 = int(self._ts[0])
        self._period = int(self._ts[-1]) - self._t0 + _LOOP_GAP_NS  # one pass, for loops
        n = len(universe)
        sym = records["sym"].astype(np.intp)
        self._count = np.bincount(sym, minlength=n).astype(np.uint64)  # seqs a pass moves on
        trade = (records["flags"] & int(TickFlag.TRADE)) != 0
        traded = np.where(trade, records["last_size"], 0).astype(np.float64)
        self._vol = np.bincount(sym, traded, n).astype(np.uint64)
        self._pass = 0
        self._pos = 0
        self._wall0: int | None = None
        self._last = _initial(records, universe)
        self.now_ns = self._t0
        self.released = 0

    @property
    def finished(self) -> bool:
        return not self.loop and self._pos >= len(self._records)

    def book_snapshot(self) -> NDArray[np.void]:
        """Every symbol's book now (`Market.book_snapshot`'s shape); only with a `book`."""
        assert self.book is not None
        return self.book.snapshot()

    def step_book(self, until_ns: int) -> tuple[TickBatch, NDArray[np.void]]:
        """`step`, and the level updates due with its ticks (before them, as the market's)."""
        assert self.book is not None
        if self.speed == 0:
            # At most `batch_max` ticks or BOOK_BATCH_MAX level updates: these outnumber ticks
            # many times, and a reader owed more than the books take at once (4096) is sent
            # fresh snapshots instead; a reader a few steps behind still gets every change.
            end = min(len(self._records), self._pos + self.batch_max) - 1
            ts = min(int(self._ts[max(end, 0)]), self.book.ts_after(BOOK_BATCH_MAX))
            batch = self._release(ts - self._t0, None) if not self.finished else self.step(0)
        else:
            batch = self.step(until_ns)
        return batch, self.book.release(None if self.finished else self._limit)

    def snapshot(self) -> TickBatch:
        """Latest released record per symbol (index = symbol id); before any, its prior state."""
        return self._last.copy()

    def step(self, until_ns: int) -> TickBatch:
        """The records due by `until_ns` on the caller's clock (speed 0: the next batch)."""
        if self._wall0 is None:
            self._wall0 = until_ns
        if self.speed == 0:
            return self._release(None, self.batch_max)
        return self._release(int((until_ns - self._wall0) * self.speed), None)

    def _release(self, virtual_ns: int | None, budget: int | None) -> TickBatch:
        out: list[TickBatch] = []
        n, taken = len(self._records), 0
        while True:
            if virtual_ns is not None:
                limit = self._t0 + virtual_ns - self._pass * self._period
                self._limit = limit
                cut = int(self._ts.searchsorted(limit, "right"))
            else:
                assert budget is not None
                cut = min(n, self._pos + budget - taken)
            if cut > self._pos:
                out.append(self._slice(self._pos, cut))
                taken += cut - self._pos
                self._pos = cut
            if self._pos < n or not self.loop or (budget is not None and taken >= budget):
                break
            self._pass, self._pos = self._pass + 1, 0
        if not out:
            return np.empty(0, TICK_DTYPE)
        return self._released(out[0] if len(out) == 1 else _join(out))

    def _released(self, batch: TickBatch) -> TickBatch:
        """`batch`, counted out: each symbol's latest record, the time and the count move on."""
        sym = batch["sym"].astype(np.intp)
        ids, rev = np.unique(sym[::-1], return_index=True)
        self._last[ids] = batch[len(batch) - 1 - rev]
        self.now_ns = int(batch["ts"][-1])
        self.released += len(batch)
        return batch

    def _slice(self, a: int, b: int) -> TickBatch:
        part = self._records[a:b]
        if not self._pass:
            return part  # a view: records are never written after loading
        k = np.uint64(self._pass)
        part = part.copy()
        sym = part["sym"].astype(np.intp)
        part["ts"] += self._pass * self._period
        part["seq"] += k * self._count[sym]
        part["volume"] += k * self._vol[sym]
        return part


def _grow(records: TickBatch, by: NDArray[np.uint64]) -> None:
    """Sizes and volume of `records` times `by` (per symbol): counted in a finer unit."""
    sym = records["sym"].astype(np.intp)
    for f in ("volume", "bid_size", "ask_size", "last_size"):
        grown = records[f].astype(np.uint64) * by[sym]
        if f != "volume" and grown.max(initial=0) > 2**32 - 1:
            raise UserError(
                f"a quote or trade size in units of the books' amounts exceeds the record's"
                f" 32-bit {f}; replay the books without the ticks"
            )
        records[f] = grown


def _join(parts: list[TickBatch]) -> TickBatch:
    return np.concatenate([p.view(_RECORD) for p in parts]).view(TICK_DTYPE)


def _initial(records: TickBatch, universe: Universe) -> TickBatch:
    """Each symbol's state just before its first record (seq one less, no trade yet)."""
    n = len(universe)
    snap = np.zeros(n, TICK_DTYPE)
    snap["sym"] = np.arange(n)
    snap["ts"] = records["ts"][0]
    price = universe.price.astype(np.float64)
    snap["bid"] = snap["ask"] = snap["last"] = price
    ids, first = np.unique(records["sym"].astype(np.intp), return_index=True)
    head = records[first]
    snap["bid"][ids], snap["ask"][ids] = head["bid"], head["ask"]
    snap["bid_size"][ids], snap["ask_size"][ids] = head["bid_size"], head["ask_size"]
    snap["last"][ids], snap["last_size"][ids] = head["last"], head["last_size"]
    traded = (head["flags"] & int(TickFlag.TRADE)) != 0
    snap["seq"][ids] = head["seq"] - 1
    snap["volume"][ids] = head["volume"] - np.where(traded, head["last_size"], 0)
    return snap


def parse_time(text: str | None, t0: int) -> int | None:
    """An ISO 8601 time, integer ns since the epoch, or `+DURATION` after the data's start."""
    if text is None:
        return None
    t = text.strip()
    if t.startswith("+"):
        try:
            return t0 + round(parse_duration(t[1:]) * 1e9)
        except DurationError:
            pass
    elif t.lstrip("-").isdigit():
        return int(t)
    else:
        try:
            return int(np.datetime64(t.rstrip("Z"), "ns").astype(np.int64))
        except ValueError:
            pass
    raise UserError(
        "expected a time such as 2025-01-06T14:30:00, ns since the epoch, or +10m after the"
        f" start, got {text!r}"
    )
