"""A test-only trio WebSocket server that serves the venue dialects from a real `Market`.

Until the server's connection layer routes venue paths, this harness is how the venues' own client
libraries reach the translators: `trio_websocket.serve_websocket` on 127.0.0.1, port 0; a source
task steps a seeded `Market` in real time, encodes each batch once per venue and hands every
session its frames through a bounded channel (full: the session's `overflow()` decision).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from tickwire.feed.venues import ENCODERS, Close, Frame, HandshakeRefused, Reply, route
from tickwire.feed.venues import VenueSession as Session
from tickwire.simulators.market import Market
from tickwire.simulators.universe import Universe

STEP_S = 0.02  # the source's cadence: fast enough for tests, light on a shared machine
BUFFER = 512  # frames a session may have queued before it counts as a slow reader


@dataclass(eq=False)
class _Conn:
    session: Session
    send: trio.MemorySendChannel[Frame | Close]
    closing: bool = False
    overflow: Reply | None = None  # the session's decision when its channel was full


@dataclass
class VenueHarness:
    universe: Universe = field(default_factory=Universe.default)
    tokens: tuple[str, ...] = ()
    seed: int = 7
    port: int = 0
    conns: set[_Conn] = field(default_factory=set)
    handshakes: list[str] = field(default_factory=list)

    start_ns: int | None = None  # event time at the start; default: now

    def __post_init__(self) -> None:
        self._t0 = trio.current_time()
        self._start_ns = time.time_ns() if self.start_ns is None else self.start_ns
        self.market = Market(self.universe, seed=self.seed, start_ns=self._start_ns)
        self.encoders = {name: make(self.universe) for name, make in ENCODERS.items()}

    def now_ns(self) -> int:
        return self._start_ns + int((trio.current_time() - self._t0) * 1e9)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, self._handler, "127.0.0.1", 0, None)
            self.port = server.port
            nursery.start_soon(self._source)
            task_status.started()

    async def _source(self) -> None:
        while True:
            await trio.sleep(STEP_S)
            now = self.now_ns()
            batch = self.market.step(now)
            shared = {name: enc.encode(batch, now) for name, enc in self.encoders.items()}
            for conn in list(self.conns):
                for frame in conn.session.deliver(shared[conn.session.venue]):
                    self._push(conn, Reply([frame]))

    def _push(self, conn: _Conn, reply: Reply) -> None:
        if conn.closing:
            return
        try:
            for frame in reply.frames:
                conn.send.send_nowait(frame)
            if reply.close is not None:
                conn.closing = True
                conn.send.send_nowait(reply.close)
        except trio.WouldBlock:
            decision = conn.session.overflow()
            conn.closing = True
            conn.send.close()  # the writer sends what waits, then the decision, then closes
            conn.overflow = decision

    async def _handler(self, request: WebSocketRequest) -> None:
        path, _, query = request.path.partition("?")
        self.handshakes.append(request.path)
        factory = route(path)
        if factory is None:
            await request.reject(404, body=b"no such venue path")
            return
        headers = {k.decode(): v.decode() for k, v in request.headers}
        try:
            session = factory(path, query, headers, self.universe, self.tokens, self.now_ns())
        except HandshakeRefused as exc:
            await request.reject(exc.status, body=exc.reason.encode())
            return
        ws = await request.accept()
        send, recv = trio.open_memory_channel[Frame | Close](BUFFER)
        conn = _Conn(session, send)
        self.conns.add(conn)
        try:
            self._push(conn, session.opened(self.now_ns()))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, ws, recv, conn, nursery.cancel_scope)
                await self._reader(ws, conn)
                nursery.cancel_scope.cancel()
        finally:
            self.conns.discard(conn)

    async def _reader(self, ws: WebSocketConnection, conn: _Conn) -> None:
        session = conn.session
        try:
            while True:
                deadline = session.next_deadline()
                at = math.inf if deadline is None else self._t0 + (deadline - self._start_ns) / 1e9
                with trio.move_on_at(at):
                    message = await ws.get_message()
                    self._push(conn, session.receive(message, self.now_ns()))
                    continue
                self._push(conn, session.timeout(self.now_ns()))
        except ConnectionClosed:
            pass

    async def _writer(
        self,
        ws: WebSocketConnection,
        recv: trio.MemoryReceiveChannel[Frame | Close],
        conn: _Conn,
        scope: trio.CancelScope,
    ) -> None:
        try:
            async for item in recv:
                if isinstance(item, Close):
                    await ws.aclose(item.code, item.reason)
                    break
                await ws.send_message(item.data if item.binary else item.data.decode())
            decision = conn.overflow
            if decision is not None:
                for frame in decision.frames:
                    await ws.send_message(frame.data if frame.binary else frame.data.decode())
                close = decision.close or Close(1008, "slow reader")
                await ws.aclose(close.code, close.reason)
        except ConnectionClosed:
            pass
        scope.cancel()


@pytest.fixture
async def venue_server(nursery: trio.Nursery) -> AsyncIterator[VenueHarness]:
    """The harness on 127.0.0.1, any free port, stepping the default universe."""
    harness = VenueHarness()
    await nursery.start(harness.run)
    yield harness
