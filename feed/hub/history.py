"""The hub's history: a bounded ring of recently published batches, addressed by stream offset.

Every record the hub publishes gets an offset, 0, 1, 2... in publish order: the stream position a
data message carries and a reconnecting client resumes from. The ring keeps the most recent
batches, at most `window_ns` of event time and `max_bytes` (whichever binds first, but always the
newest batch), so every-update subscribers read from it and a reconnecting client
recovers from it. It stores the batches it is given, never a copy. numpy only, no trio, no clock.
A batch costs its records' bytes plus `ENTRY_BYTES`, and `max_bytes` counts both: at 1 ms steps
of a few ticks each, the per-batch part is most of the memory.

What recent batches carry besides their records (each symbol's last seq, their JSON) is bounded by
`Derived`, in bytes and in batches: the oldest batches lose it first, and a reader that needs it
for them again gets it recomputed.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TICK_DTYPE, TickBatch

DEFAULT_WINDOW_S = 60.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# What the history holds per batch besides its records, measured with tracemalloc (a test keeps
# it within 10% above the measure): the Entry (112 B), the records' array header (~112 B
# with the allocation's), its start, generation and event time as ints, its end in `_ends`, and
# the two lists' slots. (Its derived data is `Derived`'s, bounded there.)
ENTRY_BYTES = 384
# What the batches' derived data may hold in all (JSON ~170 B a tick, last seqs 16 B a symbol):
# 32 MiB is ~190k ticks of JSON, 2.5 s of a 1500-symbol universe (76k ticks/s) and a minute of the
# default one, so every reader within the 1 s lag bound reads shared encodings; one further
# behind gets its batches encoded again. A fixed cap, not a share of --history-mb: the server's
# memory is its history plus constants (sizes measured: `tickwire bench`, README Design).
DERIVED_BYTES = 32 * 1024 * 1024
# ...and in batches: a reader that keeps up needs the newest few; this many covers a reader
# up to the default lag bound behind (1 s: 1000 batches at the default 1 ms cadence, fewer when
# the generator falls behind), so that readers behind share the encodings too: with 256, 100
# readers 0.3-1 s behind each encoded their batches again (a quarter of the server's CPU).
DERIVED_KEEP = 1024
_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))  # a record as 64 opaque bytes


def pick(records: TickBatch, idx: NDArray[np.intp]) -> TickBatch:
    """`records[idx]`, a copy, through a view of the records as opaque bytes: numpy copies
    structured records field by field, ~10x slower for a batch's worth (5.7 vs 1.0 us)."""
    picked: TickBatch = records.view(_RECORD)[idx].view(TICK_DTYPE)
    return picked


@dataclass(eq=False, slots=True)
class Entry:
    """One published batch: its records, its first record's offset and its generation."""

    start: int
    gen: int
    records: TickBatch
    last_ts: int  # its last record's event time: how far behind a reader in it is
    # The symbols it changed, sorted, and each one's last seq in it: kept while the batch is
    # recent (every in-step subscriber needs them), None once old (recomputed if ever needed).
    last_ids: NDArray[np.intp] | None
    last_seqs: NDArray[np.uint64] | None
    # Its JSON tick objects, encoded once, lazily, while recent (`protocol.tick_objects`).
    json: bytes | None = field(default=None)
    json_at: NDArray[np.intp] | None = field(default=None)
    # Where each symbol's records are (symbol id -> positions, in order) and its last seq: built
    # once, when a reader of named symbols first takes from it while it is recent.
    by_sym: tuple[dict[int, list[int]], dict[int, int]] | None = field(default=None)
    sparse_reads: int = 0  # readers that got a few of its records encoded on their own

    @property
    def end(self) -> int:
        return self.start + len(self.records)


class History:
    """Recent batches in publish order; `oldest` to `head` is the window a cursor may point into."""

    __slots__ = (
        "_base_gen",
        "_ends",
        "_entries",
        "_first",
        "derived",
        "head",
        "last_start",
        "max_bytes",
        "nbytes",
        "oldest",
        "window_ns",
    )

    def __init__(
        self, window_s: float = DEFAULT_WINDOW_S, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if window_s < 0 or max_bytes < 0:
            raise ValueError("the history window and memory cap must be >= 0")
        self.window_ns = int(window_s * 1e9)
        self.max_bytes = max_bytes
        # A list with a moving first index (compacted now and then): bisect needs random access.
        self._entries: list[Entry] = []
        self._ends: list[int] = []  # each entry's end offset, for bisect
        self._first = 0
        self._base_gen = 0  # the generation of _entries[0]: generations are consecutive
        self.head = 0  # the offset the next record will get
        self.oldest = 0  # the offset of the oldest record kept (`head` when nothing is kept)
        self.last_start = 0  # the offset of the newest batch's first record
        self.nbytes = 0
        self.derived = Derived()

    def __len__(self) -> int:
        return len(self._entries) - self._first

    def restart(self, offset: int) -> None:
        """Forget every record; the next one gets stream offset `offset` (a bus gateway takes
        the producer's numbering, and a gap restarts it)."""
        self._entries.clear()
        self._ends.clear()
        self._first = self._base_gen = self.nbytes = 0
        self.head = self.oldest = self.last_start = offset
        self.derived.clear()

    def covers(self, offset: int) -> bool:
        """Whether every record from `offset` to `head` is still here."""
        return self.oldest <= offset <= self.head

    def append(
        self,
        records: TickBatch,
        gen: int,
        last_ids: NDArray[np.intp],
        last_seqs: NDArray[np.uint64],
    ) -> Entry:
        newest_ts = int(records["ts"][-1])
        entry = Entry(self.head, gen, records, newest_ts, last_ids, last_seqs)
        self.derived.charge(entry, last_ids.nbytes + last_seqs.nbytes, IDS)
        if not self._entries:
            self._base_gen = gen
        elif gen != self._base_gen + len(self._entries):
            raise ValueError(f"generation {gen} does not follow the history's")
        self._entries.append(entry)
        self._ends.append(entry.end)
        self.head = entry.end
        self.last_start = entry.start
        self.nbytes += records.nbytes + ENTRY_BYTES
        self._evict(newest_ts)
        self.oldest = self._entries[self._first].start  # plain attributes: read every take
        self.derived.trim(gen, self._entries[self._first].gen)
        return entry

    def _evict(self, newest_ts: int) -> None:
        entries, cutoff = self._entries, newest_ts - self.window_ns
        while len(self) > 1:
            old = entries[self._first]
            if self.nbytes <= self.max_bytes and old.last_ts >= cutoff:
                break
            self.nbytes -= old.records.nbytes + ENTRY_BYTES
            entries[self._first] = _EVICTED  # drop the reference now: that frees the memory
            self._first += 1
        if self._first > 1024 and self._first * 2 > len(entries):
            del entries[: self._first], self._ends[: self._first]
            self._base_gen += self._first
            self._first = 0

    def lag_ns(self, offset: int, gen: int = 0) -> int:
        """Event time from the batch holding `offset` to the newest batch: 0 at the head or
        inside the newest batch, so a batch that spans a long time never counts against its
        reader (`covers(offset)` first; `gen` as for `index`)."""
        if offset >= self.last_start:
            return 0
        return self._entries[-1].last_ts - self._entries[self.index(offset, gen)].last_ts

    def index(self, offset: int, gen: int = 0) -> int:
        """The position (for `entry`) of the entry holding `offset`; `covers(offset)` first.
        `gen`: the generation that entry probably has (a reader's next), checked: a reader
        behind then costs no search."""
        entries, last = self._entries, len(self._entries) - 1
        if last >= self._first and entries[last].start <= offset:
            return last  # the usual case: a subscriber one batch behind
        i = gen - self._base_gen
        if self._first <= i < last and entries[i].start <= offset < self._ends[i]:
            return i
        return bisect.bisect_right(self._ends, offset, lo=self._first)

    def index_of_gen(self, gen: int) -> int:
        """The position of the entry of generation `gen` (which must still be kept)."""
        return gen - self._base_gen

    def gen_at(self, offset: int) -> int:
        """The generation through which every batch ends at or before `offset` (covered)."""
        if offset >= self.head:
            return self._base_gen + len(self._entries) - 1 if self._entries else 0
        return self._entries[self.index(offset)].gen - 1

    def entry(self, i: int) -> Entry:
        return self._entries[i]

    def stop(self) -> int:
        """One past the last position."""
        return len(self._entries)

    def entries_from(self, offset: int) -> list[Entry]:
        return self._entries[self.index(offset) :]

    def span_s(self) -> float:
        """Event time covered by the records kept, in seconds."""
        if not len(self):
            return 0.0
        first = self._entries[self._first].records["ts"][0]
        return float(self._entries[-1].records["ts"][-1] - first) / 1e9

    def statistics(self) -> dict[str, int | float]:
        return {
            "history_records": self.head - self.oldest,
            "history_bytes": self.nbytes,
            "history_s": round(self.span_s(), 3),
            "offset": self.head,
            "oldest_offset": self.oldest,
        }


# What a charge is for: last ids and seqs, JSON, where objects start, where symbols are.
IDS, JSON, STARTS, BY_SYM = 0, 1, 2, 3


class Derived:
    """The batches holding derived data, in the order it was made, and what it costs in bytes.

    `charge` after adding some to a batch; `trim` takes it away from the oldest batches while
    the total is over `max_bytes`, and from batches older than `keep` or gone from the history.
    """

    __slots__ = ("_made", "keep", "max_bytes", "nbytes")

    def __init__(self, max_bytes: int = DERIVED_BYTES, keep: int = DERIVED_KEEP) -> None:
        self.max_bytes = max_bytes
        self.keep = keep
        self._made: deque[tuple[Entry, int, int]] = deque()  # (batch, bytes, what)
        self.nbytes = 0

    def charge(self, entry: Entry, nbytes: int, kind: int) -> None:
        self._made.append((entry, nbytes, kind))
        self.nbytes += nbytes

    def trim(self, newest_gen: int, oldest_gen: int) -> None:
        """Keep at most `max_bytes`, of the newest `keep` batches still kept (`oldest_gen` on)."""
        made, floor = self._made, max(newest_gen - self.keep, oldest_gen - 1)
        while made and (self.nbytes > self.max_bytes or made[0][0].gen <= floor):
            entry, nbytes, kind = made.popleft()
            self.nbytes -= nbytes
            if kind == JSON:
                entry.json = None
            elif kind == STARTS:
                entry.json_at = None
            elif kind == BY_SYM:
                entry.by_sym = None
            else:
                entry.last_ids = entry.last_seqs = None

    def batches(self) -> list[Entry]:
        """The batches holding derived data, oldest first (one per charge)."""
        return [entry for entry, _, _ in self._made]

    def clear(self) -> None:
        self.trim(0, 1 << 62)


_EVICTED = Entry(0, 0, np.empty(0, TICK_DTYPE), 0, np.empty(0, np.intp), np.empty(0, np.uint64))
