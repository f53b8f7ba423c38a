"""`Reassembler`: a gateway's stream entries, read from every shard, back into whole flushes in
flush order, sans-IO (no Redis, no trio); a flush that is missing (trimmed, dropped, or from
another epoch) comes out as a gap. The entries' format is `codec.py`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tickwire.feed.bus import codec as bc
from tickwire.simulators import TickBatch


@dataclass(slots=True)
class _Pending:
    first: int
    mask: int
    got: int = 0
    parts: dict[int, TickBatch] = field(default_factory=dict)
    sent_ns: int = 0
    offset: int | None = None
    statuses: bytes = b""  # the flush's status changes (`codec.encode_statuses`)
    scenarios: bytes = b""  # its scenario starts and ends (`codec.encode_scenarios`)
    levels: bytes = b""  # its level updates (`codec.encode_levels`)
    books: bytes = b""  # every book after it (the producer's snapshot), if it carries them
    bands: bytes = b""  # its LULD band changes (`bands.encode_bands`)
    levels_lost: bool = False  # level updates before it were left out (`codec.Entry`)


class Reassembler:
    """Entries from all shards in, whole flushes out in flush order; holes come out as gaps.

    Each shard's entries arrive in order, but one read may hold shard 0's part of a flush and
    not yet shard 1's; a flush is released once every shard in its mask has delivered it. A
    flush is lost when a shard it needs has moved past it (trimmed), when the numbering skips
    (the producer dropped writes), or when the epoch changes.
    """

    def __init__(self, epoch: int, next_flush: int | None = None) -> None:
        self.epoch = epoch
        self.next_flush = next_flush  # None: take whatever comes first (a fresh reader)
        self._pending: dict[int, _Pending] = {}  # keyed by an entry's `last` flush
        self._seen: dict[int, int] = {}  # per shard: the last flush it delivered
        self.last_sent_ns = 0  # the producer's clock when it sent the latest released flush
        # Aligned with what the last `feed` returned: each released flush's stream offset and
        # status changes (`codec.encode_statuses`, b"" for none), scenario changes, level
        # updates, books and whether level updates were left out.
        self.offsets: list[int | None] = []
        self.statuses: list[bytes] = []
        self.scenarios: list[bytes] = []
        self.levels: list[bytes] = []
        self.books: list[bytes] = []
        self.bands: list[bytes] = []
        self.lost: list[bool] = []

    def feed(self, entry: bc.Entry) -> list[TickBatch | None]:
        """Released flushes (oldest first); `None` in the list marks a gap before what follows."""
        if entry.epoch != self.epoch:
            self.offsets, self.statuses, self.scenarios = [None], [b""], [b""]
            self.levels, self.books, self.bands = [b""], [b""], [b""]
            self.lost = [False]
            return [None]
        self._seen[entry.shard] = entry.last
        key = entry.last
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = _Pending(entry.first, entry.mask, offset=entry.offset)
        p.parts[entry.shard] = entry.records
        p.statuses += entry.statuses
        p.scenarios = entry.scenarios or p.scenarios  # the first entry of a write has them
        p.levels += entry.levels
        p.books += entry.books
        p.bands += entry.bands
        p.levels_lost |= entry.levels_lost
        p.got |= 1 << entry.shard
        p.sent_ns = entry.sent_ns
        return self._release()

    def _release(self) -> list[TickBatch | None]:
        out: list[TickBatch | None] = []
        offsets: list[int | None] = []
        statuses: list[bytes] = []
        scenarios: list[bytes] = []
        levels: list[bytes] = []
        books: list[bytes] = []
        bands: list[bytes] = []
        omitted: list[bool] = []
        self.offsets, self.statuses, self.scenarios = offsets, statuses, scenarios
        self.levels, self.books, self.bands, self.lost = levels, books, bands, omitted
        while self._pending:
            key = min(self._pending)
            p = self._pending[key]
            if p.got != p.mask:
                lost = any(
                    self._seen.get(s, -1) > key
                    for s in range(bc.MAX_SHARDS)
                    if p.mask >> s & 1 and not p.got >> s & 1
                )
                if not lost:
                    break  # the rest of this flush is on its way
                out.append(None)
                offsets.append(None)
                statuses.append(b"")
                scenarios.append(b"")
                levels.append(b"")
                books.append(b"")
                bands.append(b"")
                omitted.append(False)
                del self._pending[key]
                self.next_flush = key + 1
                continue
            if self.next_flush is not None and p.first != self.next_flush:
                out.append(None)  # flushes before this one never came
                offsets.append(None)
                statuses.append(b"")
                scenarios.append(b"")
                levels.append(b"")
                books.append(b"")
                bands.append(b"")
                omitted.append(False)
            out.append(bc.merge(p.parts[s] for s in sorted(p.parts)))
            offsets.append(p.offset)
            statuses.append(p.statuses)
            scenarios.append(p.scenarios)
            levels.append(p.levels)
            books.append(p.books)
            bands.append(p.bands)
            omitted.append(p.levels_lost)
            self.last_sent_ns = p.sent_ns
            del self._pending[key]
            self.next_flush = key + 1
        return out

    def completes(self, entries: Iterable[bc.Entry]) -> bool:
        """Whether `entries` alone are whole flushes that follow on, with nothing pending: fed
        in order they release every flush and no gap, so no other stream can hold a part a
        reader must wait for (it may skip reading the other streams up to the same instant)."""
        if self._pending:
            return False
        flushes: dict[int, tuple[int, int, int]] = {}  # last -> first, mask, shards got
        for e in entries:
            if e.epoch != self.epoch:
                return False
            first, mask, got = flushes.get(e.last, (e.first, e.mask, 0))
            flushes[e.last] = (first, mask, got | 1 << e.shard)
        expect = self.next_flush
        for last in sorted(flushes):
            first, mask, got = flushes[last]
            if got != mask or (expect is not None and first != expect):
                return False
            expect = last + 1
        return bool(flushes)

    def reset(self, epoch: int, next_flush: int | None) -> None:
        """Start again after a gap: forget partial flushes."""
        self.epoch = epoch
        self.next_flush = next_flush
        self._pending.clear()
        self._seen.clear()
