"""`Outbox`: a producer's flushes between its market and its writer, sans-IO (no Redis, no trio).

It numbers every flush the market hands over, keeps them (bounded) while a writer can write,
and drops them, counted, while none can (Redis down, the lease held by another producer, the
writer stopped): the hole in the flush numbers tells the gateways to resynchronise. The writer
takes everything pending at once, so a writer that fell behind writes one coalesced entry.
"""

from __future__ import annotations

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


class Outbox:
    """Numbered flushes waiting for the writer; see the module docstring."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # records kept at most; beyond, everything pending is dropped
        self.accepting = False  # a writer can write: keep flushes (else drop them)
        self.standby = False  # another producer writes: drop without counting
        self.flush = 0  # the last flush number given out
        self.done = 0  # the last flush number written or dropped
        self.dropped = 0  # flushes dropped, counted
        self.next_offset: int | None = None  # the stream offset after the last flush given
        self._pending: list[TickBatch] = []
        self._statuses: list[tuple[int, NDArray[np.void]]] = []
        self._scenarios: list[bc.ScenarioAt] = []
        self._playing = b""
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

    def put_scenario(self, name: str, started: bool, ts: int, playing: list[str]) -> bool:
        """A scenario started or ended after every record put so far (`playing`: those playing
        after it), as `put_statuses`; False if dropped."""
        if not self._pending and not self.put(np.empty(0, TICK_DTYPE), self.next_offset):
            return False
        self._scenarios.append((self._records, name, started, ts))
        self._playing = orjson.dumps(playing)
        return True

    def take(self) -> Taken | None:
        """Everything pending as one batch (None if nothing is)."""
        batches = self._pending
        if not batches:
            return None
        statuses, self._statuses = self._statuses, []
        scenarios, playing, self._scenarios, self._playing = self._scenarios, self._playing, [], b""
        self._pending, self._records = [], 0
        batch = batches[0] if len(batches) == 1 else np.concatenate(batches)
        first, last = self._first, self.flush
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
        )

    def written(self, taken: Taken) -> None:
        """The writer wrote `taken`."""
        self.done = max(self.done, taken.last)

    def drop(self, *, counted: bool) -> None:
        """Drop what is pending (counted unless a standby's): every flush given out is done."""
        self.dropped += len(self._pending) if counted else 0
        self._pending.clear()
        self._statuses.clear()
        self._scenarios.clear()
        self._playing = b""
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
        return self.flush, self.next_offset
