"""One `/v1` connection, sans-IO: one object, one table, bytes and time in, bytes and deadlines out.

`FeedCore` is the whole connection the shell talks to: its WebSocket phase (`WebSocketCore`,
with wsproto as the frame parser) and its feed-protocol phase live in one transition table
(`state.TRANSITIONS`), changed only by `process_event`. Its private parts are the request state
(`state.ConnectionState`: subscription, mode, throttle, rate limit, strikes) and the hub
subscriber, whose cursor the hub advances by at most `max_take` records a message; the core
holds the connection `seq` stamped on every data and heartbeat message, and the heartbeat and
throttle due times. Replies go out in request order and before any data that depends on them (an
`ack` precedes its snapshot, which precedes its ticks), because every byte passes through one
outbox in the order it was queued, and data is taken from the hub only while the outbox is empty.
No trio, no socket, no clock: `now` (monotonic seconds) comes in, and event-time stamps derive
from it through the context's anchor.

Adding a request op touches three places: `protocol.py` (its frozen class and its parsing in
`parse_request`), this module's one dispatch `OPS` (request class -> the method that answers
it with actions: `Reply` for a plain answer), and the client library (`client/feed.py`). The
effects an action has on the hub and the wire are `EFFECTS`; a new op needs a new one only if
it does something no action does yet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, ClassVar

from tickwire.feed import protocol as p
from tickwire.feed.hub.binwire import binary_frame
from tickwire.feed.hub.books import BookReader
from tickwire.feed.hub.hub import Pending, Subscriber
from tickwire.feed.hub.jsonbody import ticks_out
from tickwire.feed.v1 import state as st
from tickwire.feed.v1.books import BookOps
from tickwire.feed.v1.context import FeedContext as FeedContext
from tickwire.feed.v1.context import ServerCounters as ServerCounters
from tickwire.feed.v1.status import StatusReader, framed, with_halted
from tickwire.feed.ws.frames import OP_TEXT, Out, frame, joined
from tickwire.feed.ws.websocket import State, Transitions, WebSocketCore

_P, _F = st.FeedPhase, st.FeedEvent
_RESUMING = st.FeedPhase.RESUMING  # read on every take: one global, no enum lookup
_IDLE, _TICKS = State.IDLE, p.BinaryType.TICKS  # the same, for every message (~100 ns each)


class FeedCore(BookOps, WebSocketCore):
    """A `/v1` connection: requests in, replies and market data out, in order."""

    TRANSITIONS: ClassVar[Transitions] = st.TRANSITIONS
    FIRST_PHASE: ClassVar[Enum] = _P.CONNECTED

    __slots__ = (
        "_busy",
        "_heartbeat_s",
        "binary",
        "book",
        "ctx",
        "heartbeats_sent",
        "last_data_s",
        "opened_s",
        "requests",
        "seq",
        "snapshots_sent",
        "status",
        "sub",
        "ticks_sent",
    )

    def __init__(
        self, ctx: FeedContext, wake: Callable[[], None], *, binary: bool, now: float
    ) -> None:
        super().__init__(
            max_message=p.MAX_MESSAGE_BYTES,
            stall_s=ctx.stall_s,
            close_timeout_s=ctx.close_timeout_s,
            now=now,
        )
        self.ctx = ctx
        self.binary = binary
        self.opened_s = now
        self.requests = st.ConnectionState(ctx.index, ctx.symbols_body, ctx.limits, now)
        self.sub: Subscriber = ctx.hub.attach(wake)
        self.status = StatusReader.joining(ctx.statuses, self.sub)  # its place: from now on
        self.book: BookReader | None = None  # attached at the first book subscription
        self.seq = 0
        self.ticks_sent = 0
        self.snapshots_sent = 0
        self.heartbeats_sent = 0
        self.last_data_s = -math.inf
        hb_ms = ctx.heartbeat_ms
        self._heartbeat_s = hb_ms / 1000 if hb_ms > 0 else math.inf
        self._busy = False  # inside a request: the hub's wake-ups wait for its replies

    @property
    def encoding(self) -> str:
        return p.SUBPROTOCOL_BINARY if self.binary else p.SUBPROTOCOL_JSON

    def start(self, now: float) -> None:
        """Queue the welcome: the first message of every connection."""
        welcome = p.welcome_message(
            server=self.ctx.server_name,
            encoding=self.encoding,
            heartbeat_ms=self.ctx.heartbeat_ms,
            n_symbols=len(self.ctx.hub),
            epoch=self.ctx.hub.epoch,
        )
        welcome["book_depth"] = self.ctx.books.depth if self.ctx.books is not None else 0
        welcome["scenarios"] = (
            [] if self.ctx.statuses is None else list(self.ctx.statuses.scenarios)
        )
        self._text(p.dumps(welcome), now)
        self.process_event(_F.WELCOME)

    def detach(self) -> None:
        """Leave the hub (once the connection is over)."""
        self.ctx.hub.detach(self.sub)
        self.leave_books()
        self.status.leave(self.ctx.statuses, self.sub)
        self._phase(_F.LEFT)

    def _phase(self, event: st.FeedEvent) -> None:
        """A feed-protocol event; the server's subscriber count follows the phase."""
        was = self.phase in st.HOLDING
        self.process_event(event)
        now = self.phase in st.HOLDING
        if now != was:
            self.ctx.subscribers += 1 if now else -1

    # ------------------------------------------------------------------ requests

    def _on_message(self, message: str | bytes, now: float) -> None:
        requests = self.requests
        self._busy = True
        try:
            try:
                req = requests.admit(message, now)
                actions = OPS[type(req)](self, req, now)
            except p.RequestError as err:
                actions = requests.refused(err)
            for action in actions:
                EFFECTS[type(action)](self, action, now)
                if self.state is State.CLOSING:
                    break
        finally:
            self._busy = False

    # ------------------------------------------------------------------ the ops: request -> actions

    def _subscribe(self, req: p.Subscribe, now: float) -> list[st.Action]:
        books = self.book_actions(req)  # a bad `book` is refused before anything changes
        return self.requests.subscribe(req) + books

    def _unsubscribe(self, req: p.Unsubscribe, now: float) -> list[st.Action]:
        return self.requests.unsubscribe(req) + self.book_actions(req)

    def _throttle(self, req: p.Throttle, now: float) -> list[st.Action]:
        return self.requests.throttle(req)

    def _symbols(self, req: p.Symbols, now: float) -> list[st.Action]:
        actions = self.requests.symbols_reply(req)
        if self.ctx.statuses is not None:  # a market playing a scenario: who is halted now
            actions = [with_halted(a, self.ctx.statuses) for a in actions]
        return actions

    def _ping(self, req: p.Ping, now: float) -> list[st.Action]:
        return [st.Reply(p.dumps(p.with_id({"type": "pong"}, req.id, ts=self.ctx.now_ns(now))))]

    def _stats(self, req: p.Stats, now: float) -> list[st.Action]:
        self.ctx.refresh()
        msg = p.with_id({"type": "stats"}, req.id, **self.statistics(now))
        msg["server"] = self.ctx.stats()
        return [st.Reply(p.dumps(msg))]

    # ------------------------------------------------------------------ the effects of actions

    def _reply(self, action: st.Reply, now: float) -> None:
        self._text(action.text, now)

    def _set_subscription(self, action: st.SetSubscription, now: float) -> None:
        ctx = self.ctx
        ctx.refresh()
        # What the old subscription has pending goes out first, so that every symbol's
        # updates stay in seq order and new symbols start from their snapshot.
        before = self.sub.cursor
        pending = ctx.hub.take(self.sub)
        if ctx.statuses is not None and len(ctx.statuses) > self.status.next:
            if data := self._with_statuses(pending, before):
                self._queue(data, now)
        elif pending is not None:
            self._data(p.BinaryType.TICKS, pending, now)
        ctx.hub.set_subscription(self.sub, action.wildcard, action.ids)
        self._phase(_F.HOLDS if action.wildcard or action.ids.size > 0 else _F.HOLDS_NONE)

    def _send_snapshot(self, action: st.SendSnapshot, now: float) -> None:
        self._data(p.BinaryType.SNAPSHOT, self.ctx.hub.snapshot(self.sub, action.ids), now)
        self.snapshots_sent += 1
        if self.ctx.statuses is not None and (halts := self.ctx.statuses.halted(action.ids)):
            self._queue(framed(halts), now)
            self.ctx.counters.messages_sent += len(halts)

    def _set_mode(self, action: st.SetMode, now: float) -> None:
        self.ctx.hub.set_mode(self.sub, action.latest)
        self.set_books_latest(action.latest)

    def _resume(self, action: st.Resume, now: float) -> None:
        """Rewind to the client's stream position: the `ack` says whether that worked; the
        missed updates then follow through `take_data`, or a snapshot if they cannot."""
        hub = self.ctx.hub
        missed = hub.resume(self.sub, action.epoch, action.offset)
        if missed is not None and self.ctx.statuses is not None:  # and the statuses from there
            self.status.next = self.ctx.statuses.index_from(action.offset)
        self._text(p.dumps(p.resumed_ack(action.ack, missed)), now)
        if missed is not None:
            self._phase(_F.RESUMED)
        ids = action.snapshot_ids
        if missed is None and ids is not None and ids.size:
            self._data(p.BinaryType.SNAPSHOT, hub.snapshot(self.sub, ids), now)
            self.snapshots_sent += 1

    def _close(self, action: st.Close, now: float) -> None:
        self.close(action.code, action.reason, now)

    # ------------------------------------------------------------------ data

    def news(self) -> bool:
        """The hub has changes this connection has not taken yet."""
        return self.ctx.hub.gen > self.sub.sent_gen or (self.book is not None and self.book_news())

    def data_due(self) -> float:
        """When the throttle lets the next data message go (-inf: unthrottled)."""
        throttle_ms = self.requests.throttle_ms
        return self.last_data_s + throttle_ms / 1000 if throttle_ms else -math.inf

    def take_data(self, now: float) -> bytes | None:
        data = FeedCore.take_out(self, now)  # (not a subclass's: `Faulty` wraps this one)
        return None if data is None else joined(data)

    def take_out(self, now: float) -> Out | None:
        if self.state is not _IDLE or self._busy:
            return None
        if self.requests.throttle_ms and now < self.data_due():
            return None
        if self.book is None:  # no book subscribed (most connections): ticks only
            return self._take_ticks(now)
        books, n = self.take_books()  # a flush's level updates go before its ticks
        ticks = self._take_ticks(now)
        if not books:
            return ticks
        self.last_data_s = now
        self.ctx.counters.messages_sent += n - (ticks is None)  # `wrote` counts one
        return books + joined(ticks) if ticks else books

    def _take_ticks(self, now: float) -> Out | None:
        log = self.ctx.statuses
        before = self.sub.cursor
        pending = self.ctx.hub.take(self.sub)
        if self.phase is _RESUMING and not self.ctx.hub.has_more(self.sub):
            self._phase(_F.CAUGHT_UP)
        if log is not None and len(log) > self.status.next and not (pending and pending.gap):
            if pending is not None:
                self.last_data_s = now
            data = self._with_statuses(pending, before)
            if not data:
                return None
            self.ctx.counters.messages_sent -= 1  # `wrote` counts one of them
            return data
        if pending is None:
            return None
        self.last_data_s = now
        if pending.gap:  # the source lost updates: say so, then the fresh state
            self.snapshots_sent += 1
            self.ctx.counters.messages_sent += 1
            notice = frame(p.dumps(p.gap_message(self.ctx.hub.epoch)).encode(), OP_TEXT)
            return notice + self._data_frame(p.BinaryType.SNAPSHOT, pending)
        return self._data_out(_TICKS, pending)

    def _with_statuses(self, pending: Pending | None, before: int) -> bytes:
        """A take's data messages with the status changes due, in stream order (counted)."""
        assert self.ctx.statuses is not None
        data, count = self.status.frames(
            self.ctx.statuses, self.sub, pending, before, self._ticks_frame
        )
        self.ctx.counters.messages_sent += count
        return data

    def _ticks_frame(self, pending: Pending) -> bytes:
        return self._data_frame(p.BinaryType.TICKS, pending)

    def data_waiting(self, now: float) -> bool:
        """`take_data` would return more right now: a take stops at the hub's `max_take`, so a
        reader far behind (or resuming) catches up over several takes."""
        return (  # asked after every message: what is most often false first
            self.news()  # a take stops only at the head or at `max_take`: no news, no more
            and self.state is _IDLE
            and not self._busy
            and now >= self.data_due()
        )

    def _data(self, kind: p.BinaryType, pending: Pending, now: float) -> None:
        self._queue(self._data_frame(kind, pending), now)
        self.ctx.counters.messages_sent += 1

    def wrote(self, data: Out, n: int, now: float) -> None:
        WebSocketCore.wrote(self, data, n, now)  # (no `super()`: every message)
        self.ctx.counters.messages_sent += 1

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _data_frame(self, kind: p.BinaryType, pending: Pending) -> bytes:
        """The next data message, framed and stamped with the connection `seq`."""
        return joined(self._data_out(kind, pending))

    def _data_out(self, kind: p.BinaryType, pending: Pending) -> Out:
        """`_data_frame`, as buffers to send in order when it shares a body with other readers."""
        self.seq += 1
        data: Out
        if self.binary:
            # The 24-byte header with the stream offset only for clients that asked for it.
            offset = pending.offset if self.requests.resumable else None
            data = binary_frame(pending, kind, self.seq, offset)  # `encode_binary`'s bytes
        else:
            name = "ticks" if kind is _TICKS else "snapshot"
            data = ticks_out(name, self.seq, pending.json_body, pending.offset)
        n = len(pending.records)
        self.ticks_sent += n
        self.ctx.counters.ticks_sent += n
        return data

    def _text(self, text: str, now: float) -> None:
        self._queue(frame(text.encode(), OP_TEXT), now)
        self.ctx.counters.messages_sent += 1

    # ------------------------------------------------------------------ time

    def timer(self, now: float) -> None:
        super().timer(now)
        if self.state is _IDLE and now >= self.last_send_s + self._heartbeat_s:
            self.seq += 1
            self.heartbeats_sent += 1
            self._text(p.heartbeat_text(self.seq, self.ctx.now_ns(now)), now)

    def next_deadline(self, now: float) -> float:
        deadline = WebSocketCore.next_deadline(self, now)  # (no `super()`: every message)
        if self.state is _IDLE:
            deadline = min(deadline, self.last_send_s + self._heartbeat_s)
            if self.requests.throttle_ms and self.news():
                # Never -inf: a throttled connection that has sent no data yet is due now.
                deadline = min(deadline, max(now, self.data_due()))
        return deadline

    def statistics(self, now: float) -> dict[str, Any]:
        req = self.requests
        return {
            "seq": self.seq,
            "messages_sent": self.messages_sent,
            "ticks_sent": self.ticks_sent,
            "bytes_sent": self.bytes_sent,
            "snapshots_sent": self.snapshots_sent,
            "heartbeats_sent": self.heartbeats_sent,
            "ticks_conflated": self.sub.ticks_conflated,
            "requests": req.requests,
            "errors": req.errors,
            "subscriptions": req.symbols(),
            "throttle_ms": req.throttle_ms,
            "mode": req.mode,
            "offset": self.sub.cursor,
            "encoding": self.encoding,
            **self.book_statistics(),
            "connected_s": round(now - self.opened_s, 3),
            "wall_ns": time.time_ns(),
        }


# The one dispatch of requests: request class -> the FeedCore method that answers it.
OPS: dict[type[p.Request], Callable[[FeedCore, Any, float], list[st.Action]]] = {
    p.Subscribe: FeedCore._subscribe,
    p.Unsubscribe: FeedCore._unsubscribe,
    p.Throttle: FeedCore._throttle,
    p.Symbols: FeedCore._symbols,
    p.Ping: FeedCore._ping,
    p.Stats: FeedCore._stats,
}

# What each action does to the hub and the wire, in the order the op listed them.
EFFECTS: dict[type[st.Action], Callable[[FeedCore, Any, float], None]] = {
    st.Reply: FeedCore._reply,
    st.SetSubscription: FeedCore._set_subscription,
    st.SendSnapshot: FeedCore._send_snapshot,
    st.SetMode: FeedCore._set_mode,
    st.Resume: FeedCore._resume,
    st.SetBooks: FeedCore._set_books,
    st.Close: FeedCore._close,
}
