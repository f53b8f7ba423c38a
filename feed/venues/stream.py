"""The venues' reading of the hub: one cursor per venue into the hub, and what each connection has
to read.

A venue with connections reads the hub the way a `/v1` subscriber does: a `*` subscriber of every
update (a cursor and `Hub.take`); it takes at every publish, so it never falls behind to the
latest state (the encoder's trade ids, bars and session statistics need every update). What it
takes is encoded once for the venue (`encoder.encode`, a `Shared`, in a `Chunk`), each connection's
session picks its frames of it (`deliver`, shared by the sessions of the same subscription), and
each frame is framed for WebSocket once per chunk: a connection's backlog is a list of shared
bytes, handed over as one send when it reads (`take`).

The hub wakes the venue's subscriber on every publish (in the generator's task); the venue then
takes what the hub has for it (`advance`) and wakes the connections that now have frames to read;
they read them when their socket can take them. A connection that does not read (its socket is
full) keeps a backlog; past the connection's buffer it is the session's `overflow()`, decided
here, whatever state the others are in. No trio, no socket, no clock: the time is the latest the
venue's connections were told (`VenueStreams.seen`) or the event time of the newest record,
whichever is later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tickwire.feed.hub.hub import Hub, Subscriber
from tickwire.feed.venues import ENCODERS, Frame, Shared, VenueEncoder, VenueSession
from tickwire.feed.ws.frames import OP_BINARY, OP_TEXT, frame_header
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
        delivered = session.deliver(self.shared)
        if not delivered:
            return []
        out = []
        framed = self.framed
        for f in delivered:
            done = framed.get(id(f))
            if done is None:
                op = OP_BINARY if f.binary else OP_TEXT
                done = framed[id(f)] = (f, frame_header(len(f.data), op) + f.data)
            out.append(done[1])
        return out


@dataclass(eq=False, slots=True)
class Cursor:
    """What one connection has not read yet: its frames of the chunks since its last take
    (shared bytes, in order) and their size."""

    frames: list[bytes] = field(default_factory=list)
    backlog: int = 0  # bytes of `frames`


class VenueStream:
    """One venue: its encoder, its subscriber in the hub, and what each reader has to read."""

    __slots__ = ("clock", "encoder", "hub", "readers", "sub")

    def __init__(self, encoder: VenueEncoder, hub: Hub, clock: VenueStreams) -> None:
        self.encoder = encoder
        self.hub = hub
        self.clock = clock
        self.sub: Subscriber | None = None  # in the hub while it has readers
        self.readers: dict[Reader, Cursor] = {}

    def join(self, reader: Reader) -> None:
        """Read from now on (its first chunk is the next take of the hub)."""
        if self.sub is None:
            self.sub = self.hub.attach(self._wake)
            self.hub.set_subscription(self.sub, True, np.empty(0, np.intp))
        self.readers[reader] = Cursor()

    def leave(self, reader: Reader) -> None:
        if self.readers.pop(reader, None) is not None and not self.readers:
            assert self.sub is not None
            self.hub.detach(self.sub)
            self.sub = None

    def _wake(self) -> None:
        """The hub published: advance, then wake the readers that now have frames to read."""
        for reader in self.advance():
            reader.wake()

    def advance(self) -> list[Reader]:
        """Take what the hub has for the venue, encode it once, and hand each reader its frames
        of it (shared); a reader whose backlog passes the buffer overflows. Returns the readers
        that had nothing to read before and have now (the ones to wake)."""
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
        limit = clock.ctx.buffer_bytes
        woken, over = [], []
        for reader, cursor in self.readers.items():
            had = cursor.backlog
            for chunk in chunks:
                frames = chunk.frames(reader.session)
                if frames:
                    cursor.frames += frames
                    cursor.backlog += sum(map(len, frames))
            if cursor.backlog == had:
                continue
            if cursor.backlog + len(reader.outbox) > limit:
                over.append(reader)
            elif not had:
                woken.append(reader)
        for reader in over:
            self.leave(reader)
            reader.overflow(now)
        return woken

    def take(self, reader: Reader) -> list[bytes]:
        """`reader`'s frames since its last take."""
        cursor = self.readers.get(reader)
        if cursor is None or not cursor.frames:
            return []
        out = cursor.frames
        cursor.frames, cursor.backlog = [], 0
        return out


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
