"""`Outbox`: a producer's flushes between its market and its writer, sans-IO (no Redis, no trio).

It numbers every flush the market hands over, keeps them (bounded) while a writer can write,
and drops them, counted, while none can (Redis down, the lease held by another producer, the
writer stopped): the hole in the flush numbers tells the gateways to resynchronise. The writer
takes everything pending at once, so a writer that fell behind writes one coalesced entry.
A market with books puts each step's level updates before its ticks (`put_levels`); they go with
the next flush taken while some gateway mirrors books (`levels_on`), and are left out, the write
marked so (`Taken.levels_lost`), while none does: then nobody pays to write, store and decode
them. Whole books (`books`, the producer's snapshot of them) go with the next write once wanted:
a gateway asked, level updates were dropped, or the levels went on again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.feed.bus import codec as bc
from tickwire.simulators import TICK_DTYPE, TickBatch


@dataclass(frozen=True, slots=True)
class Taken:
    """Flushes `first..last` as one batch; `offset` is the stream offset of its first record
    and `next_offset` that after its last (None when the market gives none)."""

    batch: TickBatch
    flushes: int
    first: int
    last: int
    offset: int | None
    next_offset: int | None
    # Status changes (a scenario's halts and resumptions): (records of `batch` before them,
    # `STATUS_DTYPE` records), in order.
    statuses: list[tuple[int, NDArray[np.void]]] = field(default_factory=list)
    # Market scenarios that started or ended (`codec.ScenarioAt`), in order, and the JSON list
    # of those playing after them (b"": none changed).
    scenarios: list[bc.ScenarioAt] = field(default_factory=list)
    playing: bytes = b""
    # Level updates: (records of `batch` before them, LEVEL_DTYPE records), in order.
    levels: list[tuple[int, NDArray[np.void]]] = field(default_factory=list)
    books: bytes = b""  # every book after these flushes (`ladder_dtype` records), if wanted
    # LULD band changes: (records of `batch` before them, `BAND_DTYPE` records), in order.
    bands: list[tuple[int, NDArray[np.void]]] = field(default_factory=list)
    levels_lost: bool = False  # level updates made since the previous take are not in `levels`


class Outbox:
    """Numbered flushes waiting for the writer; see the module docstring."""

    def __init__(self, limit: int, books: Callable[[], bytes] | None = None) -> None:
        """`books`: every book now, as bytes (a market with books)."""
        self.limit = limit  # records kept at most; beyond, everything pending is dropped
        self.books = books
        self.want_books = books is not None  # the next write carries every book
        # A gateway mirrors books: keep level updates (else leave them out; `set_levels`).
        self.levels_on = False
        self._levels_lost = False  # level updates left out since the last take
        self.accepting = False  # a writer can write: keep flushes (else drop them)
        self.standby = False  # another producer writes: drop without counting
        self.flush = 0  # the last flush number given out
        self.done = 0  # the last flush number written or dropped
        self.dropped = 0  # flushes dropped, counted
        self.next_offset: int | None = None  # the stream offset after the last flush given
        self._pending: list[TickBatch] = []
        self._statuses: list[tuple[int, NDArray[np.void]]] = []
        self._bands: list[tuple[int, NDArray[np.void]]] = []
        self._scenarios: list[bc.ScenarioAt] = []
        self._playing = b""
        self._levels: list[tuple[int, NDArray[np.void]]] = []
        self._records = 0
        self._first = 0  # the first flush number in `_pending`
        self._first_offset: int | None = None  # and the stream offset of its first record

    def __len__(self) -> int:
        """Flushes pending."""
        return len(self._pending)

    def put(self, batch: TickBatch, offset: int | None) -> bool:
        """Number one flush; True if kept for the writer, False if dropped."""
        self.flush += 1
        if offset is not None:
            self.next_offset = offset + len(batch)
        if not self.accepting or self._records + len(batch) > self.limit:
            self.dropped += 0 if self.standby else 1
            self.drop(counted=True)
            return False
        if not self._pending:
            self._first = self.flush
            self._first_offset = offset
        self._pending.append(batch)
        self._records += len(batch)
        return True

    def put_statuses(self, records: NDArray[np.void]) -> bool:
        """Status changes after every record put so far: with the flushes pending, or as a
        flush of their own (numbered, no records) if none is; False if dropped."""
        if not self._pending and not self.put(np.empty(0, TICK_DTYPE), self.next_offset):
            return False
        self._statuses.append((self._records, records))
        return True

    def put_bands(self, records: NDArray[np.void]) -> bool:
        """LULD band changes after every record put so far, as `put_statuses`."""
        if not self._pending and not self.put(np.empty(0, TICK_DTYPE), self.next_offset):
            return False
        self._bands.append((self._records, records))
        return True

    def put_scenario(self, name: str, started: bool, ts: int, playing: list[str]) -> bool:
        """A scenario started or ended after every record put so far (`playing`: those playing
        after it), as `put_statuses`; False if dropped."""
        if not self._pending and not self.put(np.empty(0, TICK_DTYPE), self.next_offset):
            return False
        self._scenarios.append((self._records, name, started, ts))
        self._playing = orjson.dumps(playing)
        return True

    def put_levels(self, levels: NDArray[np.void]) -> bool:
        """A step's level updates, before the ticks it puts next; False if dropped (then the
        next write carries every book, so gateways mend theirs)."""
        if not len(levels):
            return True
        if not self.levels_on:  # nobody mirrors: left out, and the next write says so
            self._levels_lost = True
            return True
        if not self.accepting:
            self.want_books = self.books is not None
            return False
        self._levels.append((self._records, levels.copy()))  # a copy: the market reuses it
        return True

    def take(self) -> Taken | None:
        """Everything pending as one batch (None if nothing is)."""
        batches = self._pending
        if not batches:
            return None
        statuses, self._statuses = self._statuses, []
        bands, self._bands = self._bands, []
        scenarios, playing, self._scenarios, self._playing = self._scenarios, self._playing, [], b""
        levels, self._levels = self._levels, []
        lost, self._levels_lost = self._levels_lost, False
        self._pending, self._records = [], 0
        batch = batches[0] if len(batches) == 1 else np.concatenate(batches)
        first, last = self._first, self.flush
        books = b""
        if self.want_books and self.books is not None:
            books, self.want_books = self.books(), False
        return Taken(
            batch,
            len(batches),
            first,
            last,
            self._first_offset,
            self.next_offset,
            statuses,
            scenarios,
            playing,
            levels,
            books,
            bands,
            lost,
        )

    def set_levels(self, on: bool) -> None:
        """Whether some gateway mirrors books (from each write's reply). Turned on, the next
        write carries every book: a gateway starts from them, never across the updates left
        out before."""
        if on and not self.levels_on:
            self.want_books = self.books is not None
        self.levels_on = on

    def written(self, taken: Taken) -> None:
        """The writer wrote `taken`."""
        self.done = max(self.done, taken.last)

    def drop(self, *, counted: bool) -> None:
        """Drop what is pending (counted unless a standby's): every flush given out is done."""
        self.dropped += len(self._pending) if counted else 0
        # Gateways that mirror books hold stale ones (none mirror while the levels are off).
        lost = bool(self._levels) or bool(self._pending)
        self.want_books |= lost and self.levels_on and self.books is not None
        self._pending.clear()
        self._statuses.clear()
        self._bands.clear()
        self._scenarios.clear()
        self._playing = b""
        self._levels.clear()
        self._records = 0
        self.done = self.flush

    def stop(self, *, standby: bool = False) -> None:
        """No writer from now on (until `accept`): drop what is pending, counted unless
        another producer writes (`standby`)."""
        self.accepting = False
        self.standby = standby
        self.drop(counted=not standby)

    def accept(self) -> tuple[int, int | None]:
        """A writer is ready: keep flushes from the next one on. Returns the last flush number
        and stream offset before them (what the writer's snapshot stands for)."""
        self.accepting = True
        self.standby = False
        # What gateways hold may be stale by now (those that mirror resync after the hole).
        self.want_books = self.books is not None and self.levels_on
        return self.flush, self.next_offset
