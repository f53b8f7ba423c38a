"""One client connection: a reader task and a writer task under one nursery.

The reader only reads frames and hands them to the writer through a small bounded inbox. The
writer runs each request through the sans-IO `ConnectionState` and executes the resulting
actions in order (so an `ack` always precedes the snapshot and the data of the symbols it added),
then sends at most one market-data message with every pending update of its symbols.

The hub tells a connection it has news by calling `_wake` from the generator's task. If the
writer is parked with nothing to do (no request, no throttle, no unfinished frame), the generator
sends the data message itself with one non-blocking `send()`: no task switch per message, which
was a third of the server's time at 100 clients. Anything that would wait goes to the writer,
so the generator never waits for a client, and exactly one task sends at a time, stamping `seq`
in order. A send that makes no progress for the stall limit closes the connection with 1008.
Never raises into the server or the generator: see `Server._handle` and `_send_direct`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from . import _state as st
from . import _wsfast
from . import protocol as p
from .hub import Pending

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("tickwire.server")

# Requests waiting for the writer. Small: a client that floods requests while its writer is
# blocked gets TCP backpressure, not server memory. 32 covers any honest burst of requests.
_INBOX_SIZE = 32


@dataclass(slots=True)
class Counters:
    messages_sent: int = 0
    ticks_sent: int = 0
    bytes_sent: int = 0
    snapshots_sent: int = 0
    heartbeats_sent: int = 0


class Connection:
    # Slots: a thousand idle connections are mostly their objects' fixed costs (tracemalloc).
    __slots__ = (
        "_alarm",
        "_failure",
        "_heartbeat_s",
        "_idle",
        "_last_data_s",
        "_last_send_s",
        "_reader_lot",
        "_requests",
        "_rest",
        "_scope",
        "_stall",
        "_stall_s",
        "_unsent",
        "_woken",
        "_writer_lot",
        "binary",
        "close_code",
        "close_reason",
        "counters",
        "opened_s",
        "peer",
        "seq",
        "server",
        "state",
        "sub",
        "ws",
    )

    def __init__(self, server: Server, ws: WebSocketConnection, peer: str, binary: bool) -> None:
        self.server = server
        self.ws = ws
        self.peer = peer
        self.binary = binary
        self.seq = 0
        self.counters = Counters()
        self.opened_s = trio.current_time()
        self.close_code: int | None = None
        self.close_reason = ""
        self.state = st.ConnectionState(
            server.universe_index, server.symbols_body, server.config.limits, self.opened_s
        )
        # The writer's inbox: requests in order, plus a flag for "the hub has news". A deque and
        # two parking lots instead of a memory channel: ~3 KiB less per connection, and a
        # wake-up from the generator is one flag and one unpark.
        self._requests: list[str | bytes] = []  # a deque costs 760 B even when empty
        self._woken = False
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._reader_lot = trio.lowlevel.ParkingLot()
        # The generator sends data itself while the writer is parked with nothing to do (see
        # `_wake`); a frame it could not finish, or its failure, goes to the writer.
        self._idle = False
        self._rest: memoryview | None = None  # the end of a frame; the stream lock is held
        self._unsent: bytes | None = None  # a whole frame; the lock is not held
        self._failure: Exception | None = None
        _wsfast.share_lock(ws)
        self.sub = server.hub.attach(self._wake)
        self._last_send_s = self.opened_s
        self._last_data_s = -math.inf
        self._scope: trio.CancelScope | None = None
        self._stall = trio.CancelScope()
        self._stall_s = server.config.stall_ms / 1000
        self._alarm = trio.CancelScope()
        hb_ms = server.config.heartbeat_ms
        self._heartbeat_s = hb_ms / 1000 if hb_ms > 0 else math.inf

    # ------------------------------------------------------------------ tasks

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._reader)
                nursery.start_soon(self._writer)
        finally:
            self.server.hub.detach(self.sub)
            if self._rest is not None:  # cancelled before finishing the generator's frame
                self._rest = None
                self.ws._stream_lock.release()

    def _wake(self) -> None:
        """The hub has news for this connection: send it now, or wake the writer to.

        Called in the generator's task. When the writer is parked with nothing to do, the
        generator takes and sends the data itself: one non-blocking `send()` and no task switch,
        which halves the cost of a message (py-spy: parking, rescheduling and resuming the
        writer were ~30% of the server's time at 100 clients). Everything else (requests,
        throttled or heartbeat sends, a frame the socket did not take whole) stays the writer's.
        """
        if self._idle and not (self._woken or self._requests) and self._send_direct():
            return
        self._wake_writer()

    def _wake_writer(self) -> None:
        self._woken = True
        self._writer_lot.unpark()

    def _send_direct(self) -> bool:
        """Send pending data without waiting; False if the writer must take over."""
        if self.state.throttle_ms:
            return False
        hub = self.server.hub
        try:
            pending = hub.take(self.sub)
            if pending is None:
                return True
            data = self._data_frame(p.BinaryType.TICKS, pending)
            sent = _wsfast.try_send(self.ws, data)
        except Exception as exc:  # never into the generator: the writer raises it (1011)
            self._failure = exc
            return False
        self._last_data_s = self.server.publish_s
        if sent < 0:  # trio-websocket is writing (a pong): the writer sends the frame after it
            self._unsent = data
            return False
        self._sent(data, self.server.publish_s)
        if sent < len(data):
            self._rest = memoryview(data)[sent:]  # the lock stays held until the writer finishes
            return False
        return not hub.has_more(self.sub)  # a take stops at max_take: the writer sends the rest

    async def _reader(self) -> None:
        """Hand each request to the writer; wake it when a heartbeat or throttled send is due.

        The alarm lives here, around the wait for the next request (rare), so that the writer's
        hot loop waits on its inbox with no cancel scope: one scope per message was a measured
        ~20% of the server's time, and a task of its own cost memory per connection. The writer
        moves the alarm earlier when throttled data becomes pending; otherwise it only moves
        later, and a stale alarm only costs the writer one look at the clock.
        """
        try:
            while True:
                with trio.CancelScope() as self._alarm:
                    self._alarm.deadline = self._last_send_s + self._heartbeat_s
                    frame = await self.ws.get_message()
                if self._alarm.cancelled_caught:
                    self._wake_writer()
                else:
                    while len(self._requests) >= _INBOX_SIZE:
                        await self._reader_lot.park()
                    self._requests.append(frame)
                    self._writer_lot.unpark()
        except ConnectionClosed:
            self._closed_by_peer()

    def _closed_by_peer(self) -> None:
        reason = self.ws.closed
        if self.close_code is None and reason is not None:
            self.close_code, self.close_reason = reason.code, reason.reason or ""
        self._cancel()

    def _cancel(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _writer(self) -> None:
        # One cancel scope for the whole writer; its deadline is armed only while a send is in
        # progress (cheaper than a new scope per send). If it fires, the reader stalled.
        with trio.CancelScope() as self._stall:
            try:
                await self._write()
            except ConnectionClosed:  # the client went away
                self._closed_by_peer()
                return
        if self._stall.cancelled_caught:
            if self.close_code is None:
                self.close_code = p.CloseCode.POLICY
                self.close_reason = f"stalled: no data accepted for {self._stall_s:g} s"
            await _wsfast.abort(self.ws)
            self._cancel()

    async def _write(self) -> None:
        cfg = self.server.config
        await self._send_text(
            p.dumps(
                p.welcome_message(
                    server=self.server.name,
                    encoding=p.SUBPROTOCOL_BINARY if self.binary else p.SUBPROTOCOL_JSON,
                    heartbeat_ms=cfg.heartbeat_ms,
                    n_symbols=len(self.server.hub),
                    epoch=self.server.hub.epoch,
                )
            )
        )
        heartbeat_s = self._heartbeat_s
        requests = self._requests
        hub = self.server.hub
        while True:
            while not (self._woken or requests):
                self._idle = True
                try:
                    await self._writer_lot.park()
                finally:
                    self._idle = False
            self._woken = False
            await self._finish_direct()
            while requests:  # everything already asked, in order, before any data
                frame = requests.pop(0)
                self._reader_lot.unpark()
                for action in self.state.receive(frame, trio.current_time()):
                    await self._do(action)
            now = trio.current_time()
            due_s = self._last_data_s + self.state.throttle_ms / 1000
            if now >= due_s:
                while (pending := hub.take(self.sub)) is not None:  # several if far behind
                    await self._send_data(p.BinaryType.TICKS, pending)
                    self._last_data_s = now
                    if self.state.throttle_ms or self._requests:
                        self._woken = self._woken or hub.has_more(self.sub)
                        break
            elif hub.gen > self.sub.sent_gen and due_s < self._alarm.deadline:
                self._alarm.deadline = due_s  # throttled: come back when the interval is up
            if trio.current_time() >= self._last_send_s + heartbeat_s:
                self.seq += 1
                self.counters.heartbeats_sent += 1
                await self._send_text(p.heartbeat_text(self.seq, self.server.now_ns()))

    async def _do(self, action: st.Action) -> None:
        hub = self.server.hub
        if isinstance(action, st.Reply):
            await self._send_text(action.text)
        elif isinstance(action, st.SetSubscription):
            # Changes of the symbols held so far go out first, so that every symbol's updates
            # stay in seq order and new symbols start from their snapshot.
            pending = hub.take(self.sub)
            if pending is not None:
                await self._send_data(p.BinaryType.TICKS, pending)
            hub.set_subscription(self.sub, action.wildcard, action.ids)
        elif isinstance(action, st.SendSnapshot):
            await self._send_data(p.BinaryType.SNAPSHOT, hub.snapshot(self.sub, action.ids))
            self.counters.snapshots_sent += 1
        elif isinstance(action, st.SendPong):
            await self._send_text(
                p.dumps(p.with_id({"type": "pong"}, action.id, ts=self.server.now_ns()))
            )
        elif isinstance(action, st.SendStats):
            await self._send_text(p.dumps(self.server.stats_message(self, action.id)))
        elif isinstance(action, st.SetThrottle):
            pass  # the state holds the interval; the writer loop reads it
        elif isinstance(action, st.SetMode):
            hub.set_mode(self.sub, action.latest)
        elif isinstance(action, st.Resume):
            missed = hub.resume(self.sub, action.epoch, action.offset)
            await self._send_text(p.dumps(p.resumed_ack(action.ack, missed)))
            if missed is None and action.snapshot_ids is not None and action.snapshot_ids.size:
                await self._send_data(
                    p.BinaryType.SNAPSHOT, hub.snapshot(self.sub, action.snapshot_ids)
                )
                self.counters.snapshots_sent += 1
        elif isinstance(action, st.Close):
            await self.close(action.code, action.reason)

    # ------------------------------------------------------------------ sending

    def _data_frame(self, kind: p.BinaryType, pending: Pending) -> bytes:
        """The next data message, framed and stamped with the connection `seq`."""
        self.seq += 1
        if self.binary:
            offset = pending.offset if self.state.resumable else None
            payload = p.encode_binary(kind, self.seq, pending.records, offset)
            data = _wsfast.frame(payload, _wsfast.OP_BINARY)
        else:
            name = "ticks" if kind is p.BinaryType.TICKS else "snapshot"
            payload = p.ticks_text(name, self.seq, pending.json_body(), pending.offset)
            data = _wsfast.frame(payload, _wsfast.OP_TEXT)
        n = len(pending.records)
        self.counters.ticks_sent += n
        self.server.counters.ticks_sent += n
        return data

    async def _send_data(self, kind: p.BinaryType, pending: Pending) -> None:
        await self._send_bytes(self._data_frame(kind, pending))

    async def _send_text(self, text: str) -> None:
        await self._send_bytes(_wsfast.frame(text.encode(), _wsfast.OP_TEXT))

    async def _send_bytes(self, data: bytes) -> None:
        await _wsfast.send_frame(self.ws, data, self._stall, self._stall_s)
        self._sent(data, trio.current_time())

    def _sent(self, data: bytes, now: float) -> None:
        self._last_send_s = now
        self.counters.messages_sent += 1
        self.counters.bytes_sent += len(data)
        self.server.counters.messages_sent += 1

    async def _finish_direct(self) -> None:
        """What the generator could not finish in `_send_direct`, in order, before anything."""
        if self._rest is not None:
            rest, self._rest = self._rest, None
            await _wsfast.send_rest(self.ws, rest, self._stall, self._stall_s)
        if self._unsent is not None:
            data, self._unsent = self._unsent, None
            await self._send_bytes(data)
        if self._failure is not None:
            raise self._failure

    async def close(self, code: int, reason: str) -> None:
        """Close with `code` (best effort within a second), then end this connection's tasks."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        with trio.move_on_after(1.0):
            await self.ws.aclose(code, reason)
        self._cancel()

    def statistics(self) -> dict[str, object]:
        c = self.counters
        return {
            "seq": self.seq,
            "messages_sent": c.messages_sent,
            "ticks_sent": c.ticks_sent,
            "bytes_sent": c.bytes_sent,
            "snapshots_sent": c.snapshots_sent,
            "heartbeats_sent": c.heartbeats_sent,
            "ticks_conflated": self.sub.ticks_conflated,
            "requests": self.state.requests,
            "errors": self.state.errors,
            "subscriptions": self.state.symbols(),
            "throttle_ms": self.state.throttle_ms,
            "mode": self.state.mode,
            "offset": self.sub.cursor,
            "encoding": p.SUBPROTOCOL_BINARY if self.binary else p.SUBPROTOCOL_JSON,
            "connected_s": round(trio.current_time() - self.opened_s, 3),
            "wall_ns": time.time_ns(),
        }
