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

Books (`books.py`): a venue whose encoder is a `BookCodec` reads the server's order books through
one shared hub `BookReader` per depth (`VenueBooks`); at every advance its book news is taken
and encoded once for the venue before the ticks of the same flush (the market publishes a
flush's level updates first), and delivered to the sessions as ticks are (`deliver`).

A market playing a scenario also has trading status changes (`v1.status.StatusLog`, the log `/v1`
reads): each sits at the stream offset it was published at, and the venue's stream reads them in
that order with its takes, encoded once for the venue (`encode_statuses`, Alpaca's `statuses`);
a venue whose encoder has none skips them. Its LULD band changes sit in the same log and go the
same way (`encode_bands`, Alpaca's `lulds`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tickwire.feed.hub.books import Books
from tickwire.feed.hub.hub import Hub, Subscriber
from tickwire.feed.v1.status import Change, StatusLog
from tickwire.feed.venues import ENCODERS, Frame, Shared, VenueEncoder, VenueSession
from tickwire.feed.venues.books import VenueBooks, codec_of, newest_ns
from tickwire.feed.ws.frames import OP_BINARY, OP_TEXT, frame_header
from tickwire.simulators.ticks import TickBatch
from tickwire.simulators.universe import Universe

Piece = TickBatch | list[Change]  # a take's records (or part), or status changes between them


class Reader(Protocol):
    """A venue connection, as its venue's stream sees it (`session.VenueCore` is one)."""

    session: VenueSession
    outbox: bytearray

    def wake(self) -> None: ...

    def overflow(self, now: float) -> None: ...


class Context(Protocol):
    """What the streams read of the server's venue context (`session.VenueContext` is one)."""

    buffer_bytes: int  # a connection's backlog past this (with its outbox): overflow
    statuses: StatusLog | None  # a scenario's trading status changes, else None
    books: Books | None  # the server's order books (--book-depth), else None

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

    __slots__ = ("books", "clock", "encoder", "hub", "readers", "status_next", "sub")

    def __init__(self, encoder: VenueEncoder, hub: Hub, clock: VenueStreams) -> None:
        self.encoder = encoder
        self.hub = hub
        self.clock = clock
        self.sub: Subscriber | None = None  # in the hub while it has readers
        self.readers: dict[Reader, Cursor] = {}
        self.status_next = 0  # the status changes before this index were read (or not its own)
        codec, books = codec_of(encoder), clock.ctx.books
        self.books = None if codec is None or books is None else VenueBooks(codec, books, self.wake)

    def join(self, reader: Reader) -> None:
        """Read from now on (its first chunk is the next take of the hub)."""
        if self.sub is None:
            self.sub = self.hub.attach(self.wake)
            self.hub.set_subscription(self.sub, True, np.empty(0, np.intp))
            if (log := self.clock.ctx.statuses) is not None:
                log.readers.add(self.sub)  # a status change wakes it, as a publish does
                self.status_next = len(log)
        self.readers[reader] = Cursor()

    def leave(self, reader: Reader) -> None:
        if self.books is not None:
            self.books.leave(reader)
        if self.readers.pop(reader, None) is not None and not self.readers:
            assert self.sub is not None
            if (log := self.clock.ctx.statuses) is not None:
                log.readers.discard(self.sub)
            self.hub.detach(self.sub)
            self.sub = None

    def wake(self) -> None:
        """The hub published: advance, then wake the readers that now have frames to read."""
        for reader in self.advance():
            reader.wake()

    def set_books(self, reader: Reader, wanted: dict[int, int], now_ns: int) -> list[Frame]:
        """`reader` books `wanted` ({symbol id: depth}) from now on; its snapshot frames.
        Call `wake` first (and take the reader's frames): a snapshot goes after the data
        published before it."""
        if self.books is None:
            return []
        return self.books.set(reader, wanted, now_ns)

    def advance(self) -> list[Reader]:
        """Take what the hub has for the venue, encode it once, and hand each reader its frames
        of it (shared); a reader whose backlog passes the buffer overflows. Returns the readers
        that had nothing to read before and have now (the ones to wake)."""
        sub = self.sub
        if sub is None:
            return []
        books = self.books
        taken = books.take() if books is not None else []  # a flush's books go before its ticks
        takes = []
        while (pending := self.hub.take(sub)) is not None:
            if not pending.gap:  # the source lost updates: the venues carry on from here
                takes.append((pending.records, pending.offset))
        pieces = in_order(takes, self._due(sub.cursor))
        if not pieces and books is None:
            return []
        clock = self.clock
        now_ns, now = clock.time(max(_newest_ns(pieces), newest_ns(taken)))
        chunks = [] if books is None else [Chunk(s) for s in books.encode(taken, now_ns)]
        if pieces:
            chunks += self._chunks(pieces)
        if not chunks:
            return []
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

    def _due(self, cursor: int) -> list[Change]:
        """The status changes published since the last call, up to stream offset `cursor`."""
        log = self.clock.ctx.statuses
        if log is None or len(log) <= self.status_next:
            return []
        i = log.index_from(cursor + 1)  # those at `cursor` sit after every record taken
        due = [c for c in log.between(self.status_next, i) if c.sym >= 0]  # not scenarios
        self.status_next = i
        return due

    def _chunks(self, pieces: list[Piece]) -> list[Chunk]:
        """Each piece encoded once for the venue, in order."""
        now_ns = self.clock.time(_newest_ns(pieces))[0]
        chunks = []
        last = len(pieces) - 1
        encode_statuses = getattr(self.encoder, "encode_statuses", None)
        encode_bands = getattr(self.encoder, "encode_bands", None)
        for i, piece in enumerate(pieces):
            if isinstance(piece, list):
                changes = [(c.ts, c.sym, c.status, c.reason) for c in piece if c.band is None]
                if encode_statuses is not None and changes:
                    chunks.append(Chunk(encode_statuses(changes, now_ns)))
                bands = [(c.ts, c.sym, c.band) for c in piece if c.band is not None]
                if encode_bands is not None and bands:
                    chunks.append(Chunk(encode_bands(bands, now_ns)))
                continue
            # The time closes bars: the newest piece gets now, an older one its own last
            # record's event time (the next piece's records may be later).
            t = now_ns if i == last else int(piece["ts"][-1])
            chunks.append(Chunk(self.encoder.encode(piece, t)))
        return chunks

    def take(self, reader: Reader) -> list[bytes]:
        """`reader`'s frames since its last take."""
        cursor = self.readers.get(reader)
        if cursor is None or not cursor.frames:
            return []
        out = cursor.frames
        cursor.frames, cursor.backlog = [], 0
        return out


def in_order(takes: list[tuple[TickBatch, int]], changes: list[Change]) -> list[Piece]:
    """Takes (records, the offset after them) and status changes in stream order: a change at
    offset o sits after every record before o, so a take is cut where one falls among its
    records (a `*` take's records have consecutive offsets)."""
    out: list[Piece] = []
    i, n = 0, len(changes)
    for records, end in takes:
        start, done = end - len(records), 0
        while i < n and changes[i].offset < end:
            cut = max(changes[i].offset - start, done)
            if cut > done:
                out.append(records[done:cut])
                done = cut
            group = [changes[i]]
            i += 1
            while i < n and changes[i].offset == group[0].offset:
                group.append(changes[i])
                i += 1
            out.append(group)
        if done < len(records):
            out.append(records[done:] if done else records)
    if i < n:
        out.append(changes[i:])
    return out


def _newest_ns(pieces: list[Piece]) -> int:
    """The newest event time of `pieces`: the last record's, or the last change's."""
    newest = 0
    for piece in pieces:
        if isinstance(piece, list):
            newest = max(newest, piece[-1].ts)
        elif len(piece):
            newest = max(newest, int(piece["ts"][-1]))
    return newest


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


__all__ = [
    "Chunk",
    "Context",
    "Cursor",
    "Piece",
    "Reader",
    "VenueStream",
    "VenueStreams",
    "in_order",
]
