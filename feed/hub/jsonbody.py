"""JSON bodies of data messages: each update encoded once, for every JSON subscriber.

Two caches. A batch's tick objects (`Entry.json`, one bytes object: `protocol.tick_objects_at`;
where each starts comes with a large batch's text, or is found when first needed), encoded on
first use while the batch is recent, serve every-update takes, cut and joined per message by a
lazy `Body`; the history's `Derived` bounds them in bytes, oldest first. A fragment per symbol
of its latest state (valid while its generation matches the symbol's last change) serves
latest-mode takes and snapshots, and the subscribers taking the same span share one joined
body. A data frame differs between the readers of one take only in its `seq`: the rest of the
message is joined once per take and the frame header shared by seq width; each reader sends a
large one around its seq with one `sendmsg` (`ticks_out`), copying none, and copies a small one
(`GATHER_BYTES`). Binary subscribers never
call a body, so they never pay for JSON. No trio.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tickwire.feed import protocol as p
from tickwire.feed.hub.history import (
    JSON,
    STARTS,
    Derived,
    Entry,
    pick,
)
from tickwire.feed.ws.frames import (
    GATHER_BYTES,
    MAX_PARTS,
    OP_TEXT,
    Buffer,
    Out,
    frame_header,
    joined,
)
from tickwire.simulators.ticks import TickBatch

# A reader taking fewer than 1/_SPARSE of a batch's records gets them encoded on their own, as
# long as fewer than _SPARSE_READERS readers did so before it: with more (100 readers of 10
# symbols each), one encoding of the whole batch, cut per reader, costs less than theirs.
_SPARSE = 8
_SPARSE_READERS = 4
_FEW = 8  # cuts: up to this many are looked up one by one, more are gathered with numpy
Piece = tuple[Entry, slice | NDArray[np.intp]]  # a batch and which of its records


class JsonCache:
    """The hub's encoded tick objects; `published(gen)` after every batch."""

    __slots__ = (
        "_bodies",
        "_changed_gen",
        "_derived",
        "_frag_gen",
        "_frags",
        "_lvc",
        "gen",
        "names",
    )

    def __init__(
        self,
        names: NDArray[np.object_],
        lvc: TickBatch,
        changed_gen: NDArray[np.int64],
        derived: Derived,
    ) -> None:
        n = len(names)
        self.names = names
        self._lvc = lvc  # the hub's last-value cache and change generations, updated in place
        self._changed_gen = changed_gen
        self._derived = derived  # the history's bound on what its batches carry
        self.gen = 0
        # One JSON tick object per symbol (~170 B each, of exactly its size: the universe's
        # size bounds it)...
        self._frags: list[bytes] = [b""] * n
        self._frag_gen = np.full(n, -1, np.int64)  # ...valid while this equals _changed_gen
        # By span: one body for all `*` takers of one generation, cleared at the next one.
        self._bodies: dict[tuple[int, int], bytes] = {}

    def published(self, gen: int) -> None:
        self.gen = gen
        self._bodies.clear()

    def entry_json(self, entry: Entry) -> bytes:
        """The JSON tick objects of a batch (`protocol.tick_objects`), encoded once while recent."""
        if entry.json is not None:
            return entry.json
        text, at = p.tick_objects_at(entry.records, self.names)
        if entry.gen > self.gen - self._derived.keep:
            entry.json = text
            self._charge(entry, len(text))
            if at is not None:  # built with the text: where each object starts, for free
                entry.json_at = at
                self._charge(entry, at.nbytes, STARTS)
        return text

    def entry_starts(self, entry: Entry) -> tuple[bytes, NDArray[np.intp]]:
        """A batch's JSON tick objects and where each starts: found once, when first needed (a
        reader in step takes whole batches, which need no cuts)."""
        text = self.entry_json(entry)
        if entry.json_at is not None:  # the same for every encoding of the batch
            return text, entry.json_at
        at = p.object_starts(text, entry.records, self.names)
        if entry.gen > self.gen - self._derived.keep:
            entry.json_at = at
            self._charge(entry, at.nbytes, STARTS)
        return text, at

    def _charge(self, entry: Entry, nbytes: int, kind: int = JSON) -> None:
        self._derived.charge(entry, nbytes, kind)
        self._derived.trim(self.gen, 0)

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
            frags = p.tick_fragments(pick(self._lvc, stale), self.names)
            for i, frag in zip(stale.tolist(), frags, strict=True):
                store[i] = frag
            self._frag_gen[stale] = self._changed_gen[stale]
        body = p.join_fragments([store[i] for i in ids.tolist()])
        if key is not None:
            self._bodies[key] = body
        return body


class Body:
    """A JSON body built from the batches' shared tick objects: its parts once, on first use,
    shared by every reader of the same take; joined only for a caller that wants one bytes."""

    __slots__ = ("_body", "_cache", "_framed", "_heads", "_parts", "_pieces", "_size", "_tail")

    def __init__(self, cache: JsonCache, pieces: list[Piece]) -> None:
        self._cache, self._pieces, self._body = cache, pieces, b""
        self._parts: list[Buffer] | None = None
        self._size = 0
        self._tail: tuple[int | None, bytes] | None = None
        self._heads: dict[tuple[str, int], bytes] = {}  # frame header and type, by seq's digits
        self._framed = False  # a first reader's frame was built (without a shared tail)

    def tail(self, offset: int | None) -> bytes:
        """The message's bytes after its `seq` (`ticks_frame`), joined once for every reader."""
        tail = self._tail
        if tail is None or tail[0] != offset:
            parts, _ = self.parts()
            tail = self._tail = (offset, _tail(parts, offset))
            self._heads.clear()
        return tail[1]

    def frame(self, kind: str, seq: int, offset: int | None) -> Out:
        """`ticks_frame` of this body, as buffers to send in order: the frame's header depends
        on the message's length only, so the readers of one take whose seqs have as many
        digits share it with the type, and each sends its seq between that and the shared
        tail, copying neither. The first reader sends the parts themselves: a take read once
        (one reader, or one of named symbols) is never joined at all."""
        if not self._framed:
            self._framed = True
            parts, size = self.parts()
            first = _HEADS[kind] + b"%d" % seq
            cut = _cut(offset)
            n = len(first) + len(cut) + size + 1
            out: list[Buffer] = [frame_header(n, OP_TEXT) + first + cut, *parts, b"}"]
            return out if len(out) <= MAX_PARTS and size >= GATHER_BYTES else b"".join(out)
        tail = self.tail(offset)
        digits = b"%d" % seq
        head = self._heads.get((kind, len(digits)))
        if head is None:
            n = len(_HEADS[kind]) + len(digits) + len(tail)
            head = self._heads[kind, len(digits)] = frame_header(n, OP_TEXT) + _HEADS[kind]
        return [head + digits, tail] if len(tail) >= GATHER_BYTES else head + digits + tail

    def __call__(self) -> bytes:
        if not self._body:
            parts, _ = self.parts()
            self._body = b"".join(parts)
        return self._body

    def parts(self) -> tuple[list[Buffer], int]:
        """The body as buffers to join in order (`[`, tick objects and runs of them with their
        commas, `]`), and its length: each batch's shared text, or a view into it."""
        if self._parts is None:
            objects = self._objects()
            parts: list[Buffer] = [b"["]
            for obj in objects:
                parts += (obj, b",")
            parts[-1] = b"]"  # the last comma, or the `[` of an empty list stays and gets `]`
            if not objects:
                parts.append(b"]")
            self._parts = parts
            self._size = sum(map(len, parts))
        return self._parts, self._size

    def _objects(self) -> list[Buffer]:
        cache = self._cache
        out: list[Buffer] = []  # tick objects and runs of them, no commas between
        for entry, sel in self._pieces:
            if isinstance(sel, slice):
                n = len(entry.records)
                if sel.start == 0 and sel.stop == n:  # a whole batch (a reader in step)
                    out.append(cache.entry_json(entry))
                elif sel.stop > sel.start:  # a run of objects: one cut, commas included
                    text, at = cache.entry_starts(entry)
                    out.append(memoryview(text)[at[sel.start] : at[sel.stop] - 1])
            elif (
                entry.json is None
                and len(sel) * _SPARSE < len(entry.records)
                and entry.sparse_reads < _SPARSE_READERS
            ):
                # A few records of a batch nobody encoded yet (a reader of named symbols):
                # encode those, not the whole batch for one reader's sake. Once a few readers
                # did, it is read widely: encoded whole, once, and cut for everyone after.
                entry.sparse_reads += 1
                if len(sel):
                    out.append(p.tick_objects_at(pick(entry.records, sel), cache.names)[0])
            else:
                text, at = cache.entry_starts(entry)
                view = memoryview(text)
                if len(sel) <= _FEW:
                    out.extend([view[at[k] : at[k + 1] - 1] for k in sel.tolist()])
                else:
                    ends = (at[sel + 1] - 1).tolist()
                    starts = at[sel].tolist()
                    out.extend([view[a:b] for a, b in zip(starts, ends, strict=True)])
        return out


_HEADS = {kind: b'{"type":"%s","seq":' % kind.encode() for kind in ("ticks", "snapshot")}


def ticks_out(kind: str, seq: int, body: Callable[[], bytes], offset: int | None) -> Out:
    """A `ticks` or `snapshot` message (`protocol.ticks_text`) as one WebSocket text frame, in
    buffers to send in order (`Body.frame`) or one bytes object.

    Only `seq` differs between the readers of one take: everything after it (the offset and
    the tick list) is joined once per take (`Body.tail`) and sent by every reader after its
    own few header bytes."""
    if isinstance(body, Body):
        return body.frame(kind, seq, offset)
    tail = _tail([body()], offset)
    head = _HEADS[kind] + b"%d" % seq
    return b"".join((frame_header(len(head) + len(tail), OP_TEXT), head, tail))


def ticks_frame(kind: str, seq: int, body: Callable[[], bytes], offset: int | None) -> bytes:
    """`ticks_out` as one bytes object."""
    return joined(ticks_out(kind, seq, body, offset))


def _tail(parts: list[Buffer], offset: int | None) -> bytes:
    """What follows a data message's `seq`: its offset, if any, and its tick list."""
    return b"".join([_cut(offset), *parts, b"}"])


def _cut(offset: int | None) -> bytes:
    """The fields between a data message's `seq` and its tick list."""
    return b',"ticks":' if offset is None else b',"offset":%d,"ticks":' % offset
