"""The venues' reading of the hub: one cursor per venue into the hub, one per connection into it.

A venue with connections reads the hub the way a `/v1` subscriber does: a `*` subscriber of every
update (a cursor and `Hub.take`); it takes at every publish, so it never falls behind to the
latest state (the encoder's trade ids, bars and session statistics need every update). What it
takes is encoded once for the venue (`encoder.encode`, a `Shared`), kept as one `Chunk`, and
every connection of the venue reads the chunks from its own cursor: its session picks its frames
(`deliver`, shared by the sessions of the same subscription) and each frame is framed for
WebSocket once per chunk, shared by every connection that sends it. A chunk goes once every
connection of the venue has read past it.

The hub wakes the venue's subscriber on every publish (in the generator's task); the venue then
takes what the hub has for it (`advance`), encodes it once, counts each connection's share of it
in bytes, and wakes the connections that now have frames to read, which read them when their
socket can take them (`take`); one with nothing to read moves past the chunks at once. A
connection that does not read (its socket is full) keeps a backlog; past the connection's buffer
it is the session's `overflow()`, decided here, whatever state the others are in. No trio, no
socket, no clock: the time is the latest the venue's connections were told
(`VenueStreams.seen`) or the event time of the newest record, whichever is later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tickwire.feed.hub.hub import Hub, Subscriber
from tickwire.feed.venues import ENCODERS, Frame, Shared, VenueEncoder, VenueSession
from tickwire.feed.ws.websocket import OP_BINARY, OP_TEXT, frame_header
from tickwire.simulators.universe import Universe


class Reader(Protocol):
    """A venue connection, as its venue's stream sees it (`session.VenueCore` is one)."""

    session: VenueSession
    outbox: bytearray

    def wake(self) -> None: ...

    def overflow(self, now: float) -> None: ...


class Context(Protocol):
    """What the streams read of the server's venue context (`session.VenueContext` is one)."""

    buffer_bytes: int  # a connection's backlog past this (with its outbox): overflow

    def monotonic(self, ns: int) -> float: ...


@dataclass(eq=False, slots=True)
class Chunk:
    """One take of the hub, encoded for one venue, and its frames framed once."""

    shared: Shared
    framed: dict[int, tuple[Frame, bytes]] = field(default_factory=dict)  # by id(Frame)

    def frames(self, session: VenueSession) -> list[bytes]:
        """`session`'s frames of this chunk, with their WebSocket headers. The Frame is kept with
        its bytes so that its id cannot be reused while the chunk lives."""
        out = []
        framed = self.framed
        for f in session.deliver(self.shared):
            done = framed.get(id(f))
            if done is None:
                op = OP_BINARY if f.binary else OP_TEXT
                done = framed[id(f)] = (f, frame_header(len(f.data), op) + f.data)
            out.append(done[1])
        return out


@dataclass(eq=False, slots=True)
class Cursor:
    """Where one connection reads its venue's chunks, and what it has not read yet in bytes."""

    at: int  # the position of the next chunk it reads
    backlog: int = 0  # bytes of its frames in the chunks from `at` on (counted by `advance`)


class VenueStream:
    """One venue: its encoder, its subscriber in the hub, its chunks and its readers' cursors."""

    __slots__ = ("_by_at", "base", "chunks", "clock", "encoder", "hub", "readers", "sub")

    def __init__(self, encoder: VenueEncoder, hub: Hub, clock: VenueStreams) -> None:
        self.encoder = encoder
        self.hub = hub
        self.clock = clock
        self.sub: Subscriber | None = None  # in the hub while it has readers
        self.chunks: list[Chunk] = []
        self.base = 0  # the position of chunks[0]
        self.readers: dict[Reader, Cursor] = {}
        self._by_at: dict[int, set[Reader]] = {}  # readers by cursor position

    @property
    def head(self) -> int:
        return self.base + len(self.chunks)

    def join(self, reader: Reader) -> None:
        """Read from now on (its first chunk is the next take of the hub)."""
        if self.sub is None:
            self.sub = self.hub.attach(self._wake)
            self.hub.set_subscription(self.sub, True, np.empty(0, np.intp))
        self._place(reader, Cursor(self.head))

    def leave(self, reader: Reader) -> None:
        cursor = self.readers.pop(reader, None)
        if cursor is None:
            return
        self._unplace(reader, cursor.at)
        if not self.readers and self.sub is not None:
            self.hub.detach(self.sub)
            self.sub = None
            self.base += len(self.chunks)
            self.chunks.clear()
        else:
            self._release()

    def _place(self, reader: Reader, cursor: Cursor) -> None:
        self.readers[reader] = cursor
        self._by_at.setdefault(cursor.at, set()).add(reader)

    def _unplace(self, reader: Reader, at: int) -> None:
        group = self._by_at[at]
        group.discard(reader)
        if not group:
            del self._by_at[at]

    def _wake(self) -> None:
        """The hub published: advance, then wake the readers that now have frames to read."""
        for reader in self.advance():
            reader.wake()

    def advance(self) -> list[Reader]:
        """Take what the hub has for the venue, encode it once, and add each reader's share of
        it to its backlog; a reader whose backlog passes the buffer overflows. Returns the
        readers that had nothing to read before and have now (the ones to wake); a reader with
        nothing in the new chunks, and nothing before, moves past them at once."""
        sub = self.sub
        if sub is None:
            return []
        takes = []
        while (pending := self.hub.take(sub)) is not None:
            if not pending.gap:  # the source lost updates: the venues carry on from here
                takes.append(pending.records)
        if not takes:
            return []
        clock = self.clock
        newest_ns = int(takes[-1]["ts"][-1])
        now_ns, now = clock.time(newest_ns)
        chunks = []
        for i, records in enumerate(takes):
            # The time closes bars: the newest take gets now, an older one its own last
            # record's event time (the next take's records may be later).
            t = now_ns if i == len(takes) - 1 else int(records["ts"][-1])
            chunks.append(Chunk(self.encoder.encode(records, t)))
        self.chunks += chunks
        head = self.head
        limit = clock.ctx.buffer_bytes
        woken, over, idle = [], [], []
        for reader, cursor in self.readers.items():
            before = cursor.backlog
            for chunk in chunks:
                cursor.backlog += sum(map(len, chunk.frames(reader.session)))
            if not cursor.backlog:
                idle.append(reader)
            elif cursor.backlog + len(reader.outbox) > limit:
                over.append(reader)
            elif not before:
                woken.append(reader)
        for reader in idle:  # nothing to read: past the new chunks already
            cursor = self.readers[reader]
            if cursor.at != head:
                self._unplace(reader, cursor.at)
                cursor.at = head
                self._by_at.setdefault(head, set()).add(reader)
        for reader in over:
            self.leave(reader)
            reader.overflow(now)
        self._release()
        return woken

    def take(self, reader: Reader) -> list[bytes]:
        """`reader`'s frames from its cursor to the head; the cursor moves there."""
        cursor = self.readers.get(reader)
        if cursor is None or cursor.at == self.head:
            return []
        out: list[bytes] = []
        session = reader.session
        for chunk in self.chunks[cursor.at - self.base :]:
            out += chunk.frames(session)
        self._unplace(reader, cursor.at)
        cursor.at, cursor.backlog = self.head, 0
        self._by_at.setdefault(cursor.at, set()).add(reader)
        self._release()
        return out

    def _release(self) -> None:
        """Drop the chunks every reader has read."""
        oldest = min(self._by_at, default=self.head)
        if oldest > self.base:
            del self.chunks[: oldest - self.base]
            self.base = oldest


class VenueStreams:
    """Every venue's stream of one server; `subscribed` are the connections wanting data."""

    __slots__ = ("_streams", "ctx", "frames_delivered", "now", "now_ns", "subscribed")

    def __init__(self, universe: Universe, hub: Hub, ctx: Context) -> None:
        self.ctx = ctx
        self._streams = {n: VenueStream(make(universe), hub, self) for n, make in ENCODERS.items()}
        self.subscribed: set[Reader] = set()
        self.frames_delivered = 0
        self.now = -math.inf  # the latest time a venue connection was told (monotonic s)...
        self.now_ns = 0  # ...and as the sessions' nanoseconds

    def seen(self, now: float, now_ns: int) -> None:
        """A venue connection was told the time."""
        if now > self.now:
            self.now, self.now_ns = now, now_ns

    def time(self, newest_ns: int) -> tuple[int, float]:
        """Now, as (ns, monotonic s), for a take whose newest record has event time
        `newest_ns`: the later of that and the latest time a connection was told."""
        if newest_ns > self.now_ns:
            return newest_ns, self.ctx.monotonic(newest_ns)
        return self.now_ns, self.now

    def __len__(self) -> int:
        return sum(len(s.readers) for s in self._streams.values())

    def stream(self, venue: str) -> VenueStream:
        return self._streams[venue]

    def encoder(self, venue: str) -> VenueEncoder:
        return self._streams[venue].encoder

    def join(self, reader: Reader) -> None:
        self._streams[reader.session.venue].join(reader)

    def leave(self, reader: Reader) -> None:
        self._streams[reader.session.venue].leave(reader)
        self.subscribed.discard(reader)

    def take(self, reader: Reader) -> list[bytes]:
        """`reader`'s frames since its last take."""
        return self._streams[reader.session.venue].take(reader)

    def symbols_changed(self, reader: Reader, symbols: frozenset[int]) -> None:
        if symbols:
            self.subscribed.add(reader)
        else:
            self.subscribed.discard(reader)


__all__ = ["Chunk", "Context", "Cursor", "Reader", "VenueStream", "VenueStreams"]
