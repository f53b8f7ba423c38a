"""The latest-state take: which symbols changed since a generation, and their latest records.

A subscriber in latest mode (`mode: latest`, a throttle), one that fell past the lag bound or out
of the history window gets the latest record of each of its symbols that changed since its last
take, once: conflation, counted in `ticks_conflated` from the per-symbol seq jumps. `Changes`
indexes the symbols each generation changed (a ring of the recent ones, and each symbol's last
change), so a take costs O(changed symbols), and every in-sync `*` subscriber at the same
generation shares one take and one body. No trio.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.history import History, pick
from tickwire.feed.hub.jsonbody import JsonCache
from tickwire.feed.hub.subscriber import Pending, Subscriber
from tickwire.simulators.ticks import TickBatch

# The ring's ids in all: in step a generation changes ~50-100 symbols (~1 KiB), so this keeps
# every generation the ring serves (a quarter of it) for any universe; a CPU-bound server's
# generations change whole universes (12 KiB at 1500 symbols, 512 KiB at 65536), and then the
# oldest go: a take from before them scans `changed_gen`, as cheap as joining that many.
RING_BYTES = 8 * 1024 * 1024
_NO_IDS: NDArray[np.intp] = np.empty(0, np.intp)
# A span's ids are sorted (np.unique) when they are at most 1/16 of the universe's symbols.
_SORT_FEWER = 16


class Changes:
    """Which symbols each generation changed: a ring of the recent ones, and each one's last."""

    __slots__ = (
        "_floor",
        "_ring",
        "_size",
        "_spans",
        "changed_gen",
        "gen",
        "max_bytes",
        "nbytes",
        "synced_take",
    )

    def __init__(self, n_symbols: int, ring: int, max_bytes: int = RING_BYTES) -> None:
        self.gen = 0
        self.changed_gen = np.zeros(n_symbols, np.int64)  # the generation of its last change
        self._size = ring
        self._ring: list[NDArray[np.intp]] = [_NO_IDS] * ring  # ids by gen % ring
        self._floor = 1  # the oldest generation whose ids the ring still has
        self.max_bytes = max_bytes
        self.nbytes = 0  # of the ids in the ring
        self._spans: dict[tuple[int, int], NDArray[np.intp]] = {}  # changed ids per span
        self.synced_take: dict[int, Pending] = {}  # by span start: what synced subs get

    def record(self, gen: int, ids: NDArray[np.intp]) -> None:
        """Generation `gen` changed `ids` (sorted, unique)."""
        self.gen = gen
        self.changed_gen[ids] = gen
        ring, size = self._ring, self._size
        self.nbytes += ids.nbytes - ring[gen % size].nbytes
        ring[gen % size] = ids
        floor = max(self._floor, gen - size + 1)
        while self.nbytes > self.max_bytes and floor < gen:  # the newest always stays
            self.nbytes -= ring[floor % size].nbytes
            ring[floor % size] = _NO_IDS
            floor += 1
        self._floor = floor
        self._spans.clear()
        self.synced_take.clear()

    def since(self, gen: int) -> NDArray[np.intp]:
        """The symbols changed after generation `gen`, sorted; shared by every taker."""
        span = (gen, self.gen)
        ids = self._spans.get(span)
        if ids is None:
            ids = self._spans[span] = self._compute(gen)
        return ids

    def _compute(self, gen: int) -> NDArray[np.intp]:
        behind = self.gen - gen
        ring, size = self._ring, self._size
        if behind == 1:
            return ring[self.gen % size]
        # A few generations' ids, few next to the universe: joined and sorted. Else one scan
        # of every symbol's last change, a few us for thousands of symbols, where the sort of
        # 100 generations' ids (a reader past the lag bound) cost 100x that.
        few = behind * len(ring[self.gen % size]) * _SORT_FEWER < len(self.changed_gen)
        if few and behind < size // 4 and gen >= self._floor:
            return np.unique(np.concatenate([ring[g % size] for g in range(gen + 1, self.gen + 1)]))
        return np.flatnonzero(self.changed_gen > gen)


class LatestSource(Protocol):
    """What this take reads of the hub (`hub.Hub` is one), so that it needs no import of it."""

    lvc: TickBatch
    history: History
    gen: int
    changes: Changes
    json: JsonCache


def take_latest(hub: LatestSource, sub: Subscriber) -> Pending | None:
    """The latest record of each of `sub`'s symbols that changed since its last take."""
    changes = hub.changes
    sub.skip_to(hub.history.head)
    sub.caught_up()
    if sub.sent_gen >= hub.gen:
        return None
    if sub.synced:
        start = sub.sent_gen
        shared = changes.synced_take.get(start)
        if shared is None:
            shared = _take(hub, sub)
            if shared is not None:
                changes.synced_take[start] = shared
        elif shared.ids is not None:
            sub.conflate(shared.ids, shared.records["seq"], shared.conflated)
        sub.advance(sub.cursor, hub.gen)
        return shared
    pending = _take(hub, sub)
    sub.in_sync(sub.wildcard)  # after any take, a wildcard subscriber is in sync
    return pending


def _take(hub: LatestSource, sub: Subscriber) -> Pending | None:
    span = (sub.sent_gen, hub.gen)
    ids = hub.changes.since(sub.sent_gen)
    sub.advance(sub.cursor, hub.gen)
    if sub.wildcard:
        at = ids
    else:
        held, at = sub.find(ids)
        ids, at = ids[held], at[held]
    seqs = hub.lvc["seq"][ids]
    last = sub.last_seq[at]
    fresh = seqs > last
    # Subscribers taking the same span of everything share one encoded body.
    key: tuple[int, int] | None = span if sub.wildcard else None
    if not fresh.all():  # e.g. a snapshot already delivered them
        ids, at, seqs, last = ids[fresh], at[fresh], seqs[fresh], last[fresh]
        key = None
    if ids.size == 0:
        return None
    conflated = int((seqs - last).sum()) - ids.size
    sub.conflate(at, seqs, conflated)
    records = pick(hub.lvc, ids)
    body = hub.json.of_latest(ids, records, key)
    return Pending(records, body, conflated, ids, hub.history.head)
