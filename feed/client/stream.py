"""Where a client is in the server's stream, sans-IO: the universe, seqs and resume position.

Owns what the client library knows about the stream it reads: the symbols by id, each symbol's
last seq (so a jump is counted as conflated or lost updates), the connection `seq`, the server
run's `epoch` and the last data message's `offset` (what a reconnect resumes from); and the
case-insensitive symbol lookup with its "did you mean" message. No trio, no sockets.

Imports numpy when a feed is made, and the order book modules only when a book is asked for
(or sent): importing the client, as `tickwire tail` does, costs neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson

from tickwire.feed import protocol as p
from tickwire.feed.client.events import (
    Batch,
    BookUpdate,
    Event,
    Gap,
    ProtocolError,
    ScenarioChange,
    TradingStatus,
)
from tickwire.feed.client.resync import SeqResync
from tickwire.feed.closest import Closest

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from tickwire.feed.client.book import ClientBooks

_MISSING_KEPT = 1024  # seqs remembered as missing: a later arrival of one is late, not a repeat


class StreamState:
    """One feed's view of the server's stream, kept across reconnects."""

    def __init__(self) -> None:
        import numpy as np

        self.names: NDArray[np.object_] = np.empty(0, object)
        self.index: dict[str, int] = {}
        self.last_seq = np.zeros(0, np.uint64)
        self.seen = np.zeros(0, np.bool_)
        self.seq = 0  # the connection's message seq (restarts at each connection)
        self.missing: set[int] = set()  # seqs of this connection reported missing (a Gap)
        # Data messages that came after a later one (reordered: the `Gap` that said they were
        # missing counted them too), and those whose seq was read already (skipped).
        self.out_of_order = {"late": 0, "duplicate": 0}
        self.epoch: object = None  # the server run's `epoch` from welcome, if it sends one
        # Where we are in the server's stream (the last data message's offset) in the run that
        # `epoch` names: after a reconnect to the same run, the server replays what we missed.
        self.offset: int | None = None
        # A gap to report with the next snapshot (or a recovered ack): (downtime_s, lost so far)
        self.gap_pending: tuple[float, int] | None = None
        self.gap_reason: Literal["reconnected", "source"] = "reconnected"  # of `gap_pending`
        # The order books asked for (`books`), made at the first use: until then the welcome's
        # `book_depth` and the universe wait here for them.
        self.held_books: ClientBooks | None = None
        self._book_depth = 0
        self._refs: Sequence[Mapping[str, Any]] = ()
        self.resync = SeqResync()  # a seq jump's resume on the live connection
        self.scenarios: tuple[str, ...] = ()  # the market scenarios playing, oldest first
        self.book_levels = False  # attach each book event's records (`keep_book_levels`)

    @property
    def books(self) -> ClientBooks:
        """The order books asked for; the first use imports the book modules and makes them."""
        if self.held_books is None:
            from tickwire.feed.client.book import ClientBooks

            books = ClientBooks()
            books.server_depth = self._book_depth
            if self._refs:
                books.learn(self._refs)
            self.held_books = books
        return self.held_books

    def books_to_fetch(self) -> bool:
        """Whether a book failed its check and is to be fetched again (makes no books)."""
        return self.held_books is not None and bool(self.held_books.resync)

    def welcomed(self, welcome: Mapping[str, Any]) -> bool:
        """Note the welcome's `epoch`; True if it says the server restarted since the last one."""
        epoch = welcome.get("epoch")
        self._book_depth = int(welcome.get("book_depth", 0))
        if self.held_books is not None:
            self.held_books.server_depth = self._book_depth
        self.scenarios = tuple(welcome.get("scenarios", ()))
        restarted = epoch is not None and self.epoch is not None and epoch != self.epoch
        if epoch is not None:
            self.epoch = epoch
        return restarted

    def reconnected(self, restarted: bool, downtime_s: float) -> Gap | None:
        """A new connection after a drop: the gap to report now, or None (the snapshot will)."""
        if self.held_books is not None:
            self.held_books.reconnected()
        if restarted:  # the old seqs mean nothing now: start every symbol afresh
            self.seen[:] = False
            self.gap_pending = None
            return Gap("restarted", None, (), None, round(downtime_s, 3))
        # Set before resubscribing: the snapshot that reports the gap may arrive before the
        # ack's waiter wakes.
        self.gap_pending, self.gap_reason = (downtime_s, 0), "reconnected"
        return None

    def pending_gap(self) -> Gap | None:
        """The gap still to report when no snapshot will come (nothing was subscribed)."""
        if self.gap_pending is None:
            return None
        downtime, _ = self.gap_pending
        self.gap_pending = None
        return Gap("reconnected", 0, (), None, round(downtime, 3))

    def resume_from(self, restarted: bool) -> dict[str, Any] | bool:
        """A resubscribe's `resume`: our position in this run, or True (positions from now)."""
        if self.offset is not None and not restarted:  # offsets of another run mean nothing
            return {"epoch": self.epoch, "offset": self.offset}
        return True

    def learn(self, refs: Sequence[Mapping[str, Any]]) -> None:
        """The server's universe (its `symbols` reply); a new size starts every symbol afresh."""
        import numpy as np

        self._refs = refs
        if self.held_books is not None:
            self.held_books.learn(refs)
        if len(refs) != len(self.names):
            self.names = np.array([r["symbol"] for r in refs], dtype=object)
            self.index = {r["symbol"]: r["id"] for r in refs}
            self.last_seq = np.zeros(len(refs), np.uint64)
            self.seen = np.zeros(len(refs), np.bool_)

    def forget(self, symbols: Sequence[str]) -> None:
        """A later re-subscribe to `symbols` starts afresh: its seq jump is not a loss."""
        if self.held_books is not None:
            self.held_books.forget(symbols)
        for s in symbols:
            if s in self.index:
                self.seen[self.index[s]] = False

    def receive(self, message: str | bytes) -> tuple[list[Event], dict[str, Any] | None]:
        """One server message in: the events it makes, in order, and the reply it is (if any)."""
        events: list[Event] = []
        if isinstance(message, bytes) and message[1:2] in (b"\x03", b"\x04"):  # a book frame
            self._check_seq(events, int.from_bytes(message[8:16], "little"))
            made = self.books.receive_binary(message)
            events.extend(with_levels(made, message, self.index) if self.book_levels else made)
            return events, None
        if isinstance(message, bytes):
            frame = p.decode_binary(message)
            is_ticks = frame.kind is p.BinaryType.TICKS
            kind: Literal["ticks", "snapshot"] = "ticks" if is_ticks else "snapshot"
            self._data(events, kind, frame.seq, frame.records, frame.offset)
            return events, None
        msg = orjson.loads(message)
        mtype = msg.get("type")
        if mtype == "ticks" or mtype == "snapshot":
            records = p.records_from_json(msg["ticks"], self.index)
            self._data(events, mtype, msg["seq"], records, msg.get("offset"))
        elif mtype == "book" or mtype == "book_snapshot":
            self._check_seq(events, msg["seq"])
            events.extend(self.books.receive(msg))
        elif mtype == "heartbeat":
            self._check_seq(events, msg["seq"])
        elif mtype == "status" and not self.resync.waiting:  # a symbol halted or resumed
            events.append(
                TradingStatus(msg["symbol"], msg["status"], msg.get("reason", ""), msg["ts"])
            )
        elif mtype == "scenario" and not self.resync.waiting:  # one started or ended
            self.scenarios = tuple(msg["active"])
            events.append(ScenarioChange(msg["name"], msg["state"], msg["ts"], self.scenarios))
        elif mtype in ("status", "scenario"):  # while resuming: the replay sends it again
            pass
        elif mtype == "ack" and (gap := self.resync.acked(msg)) is not None:
            events.append(gap)  # the resume's ack: its replay (or a snapshot) follows
        elif mtype == "error" and "id" not in msg and self.resync.waiting:
            events.append(self.resync.cancel())  # refused (rate_limited): the gap as it is
        elif mtype == "gap":  # the server's source lost updates: a snapshot follows
            if msg.get("epoch") not in (None, self.epoch):  # a new run upstream: a restart
                self.epoch, self.offset = msg["epoch"], None
                self.seen[:] = False  # its seqs start afresh: what was missed is unknowable
                events.append(Gap("restarted", None, ()))
            else:
                self.gap_pending, self.gap_reason = (0.0, 0), "source"
        else:
            return events, msg
        return events, None

    def recovered(self, reply: Mapping[str, Any]) -> Gap | None:
        """The gap a resumed subscribe's ack reports (before the replayed batches), if any."""
        if not reply.get("recovered") or self.gap_pending is None:
            return None
        downtime, _ = self.gap_pending
        self.gap_pending = None
        return Gap("reconnected", 0, (), None, round(downtime, 3), int(reply["missed"]))

    def _check_seq(self, events: list[Event], seq: int) -> bool:
        """Whether the message with this connection `seq` is new: a jump starts a resync (its
        `Gap` comes with the server's answer, `resync.py`); a seq
        reported missing that comes late (reordered) is counted and read; one already read
        (a duplicate) is counted and skipped."""
        if seq == self.seq + 1:
            self.seq = seq
            return True
        if seq > self.seq:
            self.resync.jumped(seq - self.seq - 1)  # the feed resumes (or reports the gap)
            self.missing.update(range(max(self.seq + 1, seq - _MISSING_KEPT), seq))
            while len(self.missing) > _MISSING_KEPT:
                self.missing.discard(min(self.missing))
            self.seq = seq
            return True
        if seq in self.missing:
            self.missing.discard(seq)
            self.out_of_order["late"] += 1
            return True
        self.out_of_order["duplicate"] += 1
        return False

    def _data(
        self,
        events: list[Event],
        kind: Literal["ticks", "snapshot"],
        seq: int,
        records: NDArray[np.void],
        offset: int | None,
    ) -> None:
        if not self._check_seq(events, seq) or (kind == "ticks" and self.resync.waiting):
            return  # a repeat, or data the resume's replay sends again
        if offset is not None and not self.resync.waiting:
            self.offset = offset
        records, sym, jumps = seq_jumps(records, self.last_seq, self.seen)
        skipped = int(jumps.sum())
        if self.gap_pending is not None and kind == "snapshot":
            downtime, _ = self.gap_pending
            self.gap_pending = None
            jumped = tuple(self.names[sym[jumps > 0]].tolist())
            reason, self.gap_reason = self.gap_reason, "reconnected"
            events.append(Gap(reason, skipped, jumped, None, round(downtime, 3)))
            skipped = 0
        events.append(Batch(kind, seq, records, skipped, self.names))


def with_levels(events: list[Event], message: bytes, index: Mapping[str, int]) -> list[Event]:
    """`events` of a binary book frame, each `BookUpdate` with the frame's records of its
    symbols (copied: the frame's buffer is the message's)."""
    import numpy as np

    from tickwire.feed.protocol.book import decode_book_binary

    records = decode_book_binary(message).records
    out: list[Event] = []
    for event in events:
        if isinstance(event, BookUpdate):
            ids = [index[s] for s in event.symbols]
            event = dataclasses.replace(event, levels=records[np.isin(records["sym"], ids)])
        out.append(event)
    return out


def seq_jumps(
    records: NDArray[np.void], last_seq: NDArray[np.uint64], seen: NDArray[np.bool_]
) -> tuple[NDArray[np.void], NDArray[np.intp], NDArray[np.int64]]:
    """Per record, the updates skipped before it (its symbol's seq jump), with repeats dropped.

    A message may hold several updates of a symbol (every-update delivery): each is compared
    with the one before it. A record at or below the seq already held is a repeat (a replay
    that overlaps a snapshot) and is dropped. Updates `last_seq` and `seen` in place.
    """
    import numpy as np  # loaded by then (`StreamState`): a dict lookup

    sym = records["sym"].astype(np.intp)
    seqs = records["seq"].astype(np.int64)
    order = np.argsort(sym, kind="stable")  # by symbol, in event order within each
    s, q = sym[order], seqs[order]
    first = np.ones(len(s), np.bool_)
    first[1:] = s[1:] != s[:-1]
    # A symbol not seen since it was (re)subscribed or the server restarted starts afresh:
    # a restarted run's seqs begin again, below the old run's.
    fresh = s[first & ~seen[s]]
    last_seq[fresh] = 0
    prev = np.empty(len(s), np.int64)
    prev[1:] = q[:-1]
    prev[first] = last_seq[s[first]].astype(np.int64)
    known = seen[s] | ~first
    jump = np.zeros(len(s), np.int64)
    jump[order] = np.where(known & (q > prev), q - prev - 1, 0)
    repeat = np.zeros(len(s), np.bool_)
    repeat[order] = known & (q <= prev)
    last = np.ones(len(s), np.bool_)
    last[:-1] = s[1:] != s[:-1]
    ends = s[last]
    last_seq[ends] = np.maximum(last_seq[ends], q[last].astype(np.uint64))
    seen[s] = True
    if repeat.any():
        keep = ~repeat
        return records[keep], sym[keep], jump[keep]
    return records, sym, jump


def resolve_symbols(wanted: Sequence[str], universe: Sequence[str]) -> list[str]:
    """Map `wanted` onto `universe` case-insensitively; '*' passes through.

    Raises ProtocolError('unknown_symbol', ...) whose message names the closest symbols
    (difflib), so a typo like `APPL` answers "did you mean AAPL?".
    """
    by_key = {s.casefold(): s for s in universe}
    out: list[str] = []
    unknown: list[str] = []
    for name in wanted:
        found = "*" if name == "*" else by_key.get(name.strip().casefold())
        if found is None:
            unknown.append(name)
        elif found not in out:
            out.append(found)
    if unknown:
        hints = []
        near = Closest(universe)
        for name in unknown:
            spelled = near.to(name)
            hints.append(
                f"{name!r} (did you mean {', '.join(spelled)}?)" if spelled else repr(name)
            )
        noun = "symbol" if len(unknown) == 1 else "symbols"
        raise ProtocolError(
            "unknown_symbol",
            f"unknown {noun} {'; '.join(hints)}; the server has {len(universe)} symbols",
            unknown,
        )
    return out


def symbol_list(symbols: Sequence[str] | str) -> list[str]:
    """One symbol or several, as a list."""
    return [symbols] if isinstance(symbols, str) else list(symbols)
