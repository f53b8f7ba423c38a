"""One connection's cursor into the hub, and what a take hands it.

A `Subscriber` is owned by the hub: its fields are written only by its own methods, which the
hub's modules (`hub.py`, `every.py`, `latest.py`) call for each step of a take (`advance`,
`deliver`, `conflate`, ...); its connection only reads them. numpy only: no trio, no protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TickBatch


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connection's view of the hub. Only its writer task touches it (besides `wake`).

    Its per-symbol state costs what it holds: a `*` subscriber keeps a seq for every symbol
    (`last_seq` indexed by symbol id), any other one only for its own symbols (`ids`, sorted,
    and `last_seq` aligned with them), so a connection on 10 symbols pays for 10, not the universe.
    """

    wake: Callable[[], None]
    n_symbols: int
    wildcard: bool = False
    ids: NDArray[np.intp] = field(default_factory=lambda: _NONE)  # held symbols, sorted...
    last_seq: NDArray[np.uint64] = field(default_factory=lambda: _NO_SEQS)  # ...the seq of each
    sent_gen: int = 0  # every batch up to this generation has been taken
    ticks_conflated: int = 0
    # Wildcard in latest mode, and last_seq is every symbol's seq as of sent_gen: then its next
    # take is the same for every such subscriber at the same generation, computed once for all.
    synced: bool = False
    cursor: int = 0  # stream offset: every record before it was delivered or conflated
    latest: bool = False  # latest state per symbol (conflation) instead of every update
    ahead_until: int = 0  # a snapshot went out newer than the cursor: skip repeats before this
    catch_up_to: int = 0  # it resumed: no lag bound until its cursor reaches this offset
    news_gen: int = 0  # the first generation with news for it since its last take (0: none)
    resync: bool = False  # the source lost updates (`Hub.resync`): its next take is a snapshot
    # `last_seq` may be another subscriber's array too (`took`): copied before a write.
    shares_seqs: bool = False

    def find(self, syms: NDArray[Any]) -> tuple[NDArray[np.bool_], NDArray[np.intp]]:
        """Which of `syms` (symbol ids) it holds, and where their seqs sit in `last_seq` (for
        the ones it does not hold: a place to ignore, valid unless it holds nothing)."""
        if self.wildcard:
            return np.ones(len(syms), np.bool_), syms.astype(np.intp, copy=False)
        if not len(self.ids):
            return np.zeros(len(syms), np.bool_), np.zeros(len(syms), np.intp)
        # A scratch table shared by every subscriber of this universe size: its ids' places
        # are written, gathered, and erased again. A gather costs a tenth of a searchsorted
        # over the same records, and a take scans thousands of them.
        place = _scratch(self.n_symbols)
        place[self.ids] = np.arange(len(self.ids))
        at: NDArray[np.intp] = place[syms]
        place[self.ids] = -1
        found: NDArray[np.bool_] = at >= 0
        at[~found] = 0
        return found, at

    # ------------------------------------------------------------------ moving the cursor

    def advance(self, cursor: int, gen: int) -> None:
        """Everything before stream offset `cursor` and up to generation `gen` is taken."""
        self.cursor, self.sent_gen = cursor, gen

    def skip_to(self, cursor: int) -> None:
        """Nothing of its subscription lies before `cursor` (batches without its symbols)."""
        self.cursor = cursor

    def news(self, gen: int) -> None:
        """Generation `gen` changed one of its symbols (the first such since its last take
        counts)."""
        if not self.news_gen:
            self.news_gen = gen

    def owed_since(self, gen: int) -> None:
        """Its symbols' updates after generation `gen` are still owed (set even if none
        changed: a subscriber behind that narrowed from `*`)."""
        self.news_gen = gen + 1

    def caught_up(self) -> None:
        """It has taken all there is for its subscription."""
        self.news_gen = 0

    def ahead(self, head: int) -> None:
        """A snapshot went out newer than the cursor: updates before `head` it already has."""
        if self.cursor < head:
            self.ahead_until = head

    def restart(self, offset: int, gen: int) -> None:
        """The history restarted at `offset` (generation `gen`): the cursor moves there."""
        self.cursor = self.ahead_until = self.catch_up_to = offset
        self.news_gen, self.synced = 0, False
        self.sent_gen = gen

    def rewind(self, offset: int, head: int, gen_at: int, gen: int) -> None:
        """Back to `offset` (generation `gen_at` there) to take again up to `head`, with no lag
        bound until then; `gen` is the hub's."""
        self.cursor = self.ahead_until = offset
        self.catch_up_to = head  # it asked for these: the lag bound waits until it has them
        self.sent_gen = gen_at
        self.news_gen = gen_at + 1 if gen_at < gen else 0
        self.synced = False

    def gap(self, gen: int) -> None:
        """The source lost updates at generation `gen`: its next take is a snapshot."""
        self.sent_gen = gen
        if self.wildcard or len(self.ids):
            self.resync = True

    def take_gap(self, head: int, gen: int) -> bool:
        """Whether its next take is the gap's snapshot; if so, the cursor moves to the head."""
        if not self.resync:
            return False
        self.resync = False
        self.cursor, self.sent_gen = head, gen
        return True

    def set_latest(self, latest: bool) -> None:
        if self.latest != latest:
            self.latest = latest
            self.synced = False

    def in_sync(self, synced: bool) -> None:
        """Whether its seqs are every symbol's as of `sent_gen` (a `*` latest-mode reader then
        shares one take with the others at that generation)."""
        self.synced = synced

    # ------------------------------------------------------------------ its seqs

    def took(
        self,
        at: NDArray[np.intp],
        seqs: NDArray[np.uint64],
        cursor: int,
        gen: int,
        chain: list[NDArray[np.uint64]],
    ) -> None:
        """A take of every update, shared by the `*` readers at its start, went out: its seqs
        (`deliver`), its end (`advance`); not in sync (a latest-mode reader's share) until a
        take of the latest state says so. One call for what a reader in step does every message.

        `chain` is the take's [seqs before, seqs after], made by its first reader: a reader
        whose seqs before are those (the very array, or equal ones) takes the array after as
        its own, shared, instead of writing the take's seqs into its own (100 readers in step
        then make one array a take, not 100 scattered writes)."""
        self.synced = False
        if len(at):
            mine = self.last_seq
            if chain and (mine is chain[0] or _same(mine, chain[0])):
                self.last_seq = chain[1]
                self.shares_seqs = True
            elif not chain:
                after = mine.copy()
                after[at] = seqs
                chain += (mine, after)
                self.last_seq, self.shares_seqs = after, True
            else:  # other seqs than the first reader's (a history restart): its own
                self._own()[at] = seqs
        self.cursor, self.sent_gen = cursor, gen

    def _own(self) -> NDArray[np.uint64]:
        """`last_seq`, its own to write (a copy if it shared it)."""
        if self.shares_seqs:
            self.last_seq, self.shares_seqs = self.last_seq.copy(), False
        return self.last_seq

    def deliver(self, at: NDArray[np.intp], seqs: NDArray[np.uint64]) -> None:
        """These seqs went out, at these places of `last_seq`."""
        self._own()[at] = seqs

    def deliver_newer(self, at: NDArray[np.intp], seqs: NDArray[np.uint64]) -> None:
        """These seqs went out, where newer than what it holds (after a snapshot)."""
        mine = self._own()
        mine[at] = np.maximum(mine[at], seqs)

    def conflate(self, at: NDArray[np.intp], seqs: NDArray[np.uint64], conflated: int) -> None:
        """The latest states went out, `conflated` updates before them never will."""
        self._own()[at] = seqs
        self.ticks_conflated += conflated

    def seq_of(self, sym: int) -> int:
        """The seq last delivered for held symbol `sym`."""
        return int(self.last_seq[sym if self.wildcard else int(np.searchsorted(self.ids, sym))])

    def hold(self, wildcard: bool, ids: NDArray[np.intp], seqs: NDArray[np.uint64]) -> None:
        """Hold these symbols (`ids` sorted and unique; ignored with `wildcard`) at these seqs
        (one per held symbol: per symbol id for `*`)."""
        self.wildcard = wildcard
        self.ids = _NONE if wildcard else ids
        self.shares_seqs = self.shares_seqs and seqs is self.last_seq
        self.last_seq = seqs


def _same(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> bool:
    return len(a) == len(b) and bool((a == b).all())


_SCRATCH: dict[int, NDArray[np.intp]] = {}


def _scratch(n: int) -> NDArray[np.intp]:
    """-1 for every symbol id of a universe of `n` (callers restore what they write)."""
    table = _SCRATCH.get(n)
    if table is None:
        table = _SCRATCH[n] = np.full(n, -1, np.intp)
    return table


_NONE: NDArray[np.intp] = np.empty(0, np.intp)
_NO_SEQS: NDArray[np.uint64] = np.empty(0, np.uint64)


@dataclass(frozen=True, slots=True)
class Pending:
    """What one subscriber has to send: records and, for JSON, their encoded list."""

    records: TickBatch
    json_body: Callable[[], bytes]  # lazy: binary subscribers never encode JSON
    conflated: int
    ids: NDArray[np.intp] | None = None  # symbol ids of `records`, when shared
    offset: int = 0  # the stream position after this message: resume from here
    gap: bool = False  # a snapshot after the source lost updates (`Hub.resync`)
    # The records' bytes, made once for every binary reader of this take (`record_bytes`).
    raw: list[bytes] = field(default_factory=list, compare=False, repr=False)
    # Its binary frames' shared parts, by (type, with offset): `binwire.binary_frame`.
    frames: dict[tuple[int, bool], tuple[bytes, bytes, bytes]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def record_bytes(self) -> bytes:
        """`records` as the bytes a binary frame carries, copied once per take, not per reader."""
        if not self.raw:
            self.raw.append(self.records.tobytes())
        return self.raw[0]
