"""JSON bodies of data messages: each update encoded once, for every JSON subscriber.

Two caches. A batch's tick objects (`Entry.frags`), encoded on first use while the batch is one
of the newest `FRAG_KEEP`, serve every-update takes, joined per message by a lazy `Body`. A
fragment per symbol of its latest state (valid while its generation matches the symbol's last
change) serves latest-mode takes and snapshots, and the subscribers taking the same span share
one joined body. Binary subscribers never call a body, so they never pay for JSON. No trio.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TickBatch

from . import protocol as p
from ._history import Entry

# Batches whose JSON tick objects and per-symbol summaries stay cached (older: recomputed on
# demand, for a subscriber that is behind): the history then costs its records and ~200 B a batch.
FRAG_KEEP = 256

# A reader taking fewer than 1/_SPARSE of a batch's records gets them encoded on their own.
_SPARSE = 8
Piece = tuple[Entry, slice | NDArray[np.intp]]  # a batch and which of its records


class JsonCache:
    """The hub's encoded tick objects; `published(gen)` after every batch."""

    __slots__ = ("_bodies", "_changed_gen", "_frag_gen", "_frags", "_lvc", "gen", "names")

    def __init__(
        self, names: NDArray[np.object_], lvc: TickBatch, changed_gen: NDArray[np.int64]
    ) -> None:
        n = len(names)
        self.names = names
        self._lvc = lvc  # the hub's last-value cache and change generations, updated in place
        self._changed_gen = changed_gen
        self.gen = 0
        self._frags: list[bytes] = [b""] * n  # JSON tick object per symbol...
        self._frag_gen = np.full(n, -1, np.int64)  # ...valid while this equals _changed_gen
        self._bodies: dict[tuple[int, int], bytes] = {}  # by span: one body for all `*` takers

    def published(self, gen: int) -> None:
        self.gen = gen
        self._bodies.clear()

    def entry_frags(self, entry: Entry) -> list[bytes]:
        """The JSON tick objects of a batch, encoded once while it is recent."""
        if entry.frags is not None:
            return entry.frags
        frags = p.tick_fragments(entry.records, self.names)
        if entry.gen > self.gen - FRAG_KEEP:
            entry.frags = frags
        return frags

    def of_pieces(self, pieces: list[Piece]) -> Callable[[], bytes]:
        """The lazy body of an every-update take: these records of these batches."""
        return Body(self, pieces)

    def of_latest(
        self, ids: NDArray[np.intp], records: TickBatch, key: tuple[int, int] | None = None
    ) -> Callable[[], bytes]:
        """A lazy encoder of latest states `records` of `ids`. The fragment cache holds the hub's
        latest states, so once the hub has moved on, the body is encoded from the records."""
        gen = self.gen

        def body() -> bytes:
            if self.gen == gen:
                return self._latest_list(ids, key)
            return p.ticks_body(records, self.names)

        return body

    def _latest_list(self, ids: NDArray[np.intp], key: tuple[int, int] | None) -> bytes:
        """The encoded list of tick objects for `ids`; each update encoded once per hub."""
        if key is not None and (body := self._bodies.get(key)) is not None:
            return body
        stale = ids[self._frag_gen[ids] != self._changed_gen[ids]]
        store = self._frags
        if stale.size:
            frags = p.tick_fragments(self._lvc[stale], self.names)
            for i, frag in zip(stale.tolist(), frags, strict=True):
                store[i] = frag
            self._frag_gen[stale] = self._changed_gen[stale]
        body = p.join_fragments([store[i] for i in ids.tolist()])
        if key is not None:
            self._bodies[key] = body
        return body


class Body:
    """A JSON body built once, on first use, from the batches' shared tick fragments."""

    __slots__ = ("_body", "_cache", "_pieces")

    def __init__(self, cache: JsonCache, pieces: list[Piece]) -> None:
        self._cache, self._pieces, self._body = cache, pieces, b""

    def __call__(self) -> bytes:
        if not self._body:
            out: list[bytes] = []
            for entry, sel in self._pieces:
                if isinstance(sel, slice):
                    out.extend(self._cache.entry_frags(entry)[sel])
                elif entry.frags is None and len(sel) * _SPARSE < len(entry.records):
                    # A few records of a batch nobody encoded yet (a reader of named symbols):
                    # encode those, not the whole batch for one reader's sake.
                    out.extend(p.tick_fragments(entry.records[sel], self._cache.names))
                else:
                    frags = self._cache.entry_frags(entry)
                    out.extend([frags[k] for k in sel.tolist()])
            self._body = p.join_fragments(out)
        return self._body
