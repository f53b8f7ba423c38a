"""Send pre-encoded WebSocket data frames on a trio-websocket connection without wsproto.

trio-websocket's `send_message` runs every message through wsproto's frame builder (measured at
~25 us per message, its issue #32), which is the fan-out's bottleneck. Server-to-client data frames
are simple (RFC 6455 section 5.2: FIN + opcode, unmasked, 7/16/64-bit length), so the writer builds
the header itself and writes header + payload with one `send_all`, holding the connection's own
`_stream_lock` exactly as `WebSocketConnection._send` does, so frames never interleave with the
pongs and close frames that trio-websocket writes from its reader task. trio-websocket keeps the
handshake, control frames and receiving. We never negotiate extensions (no permessage-deflate), so
an unmodified frame is what wsproto would have written. Only for whole, unfragmented messages.

On a plain TCP socket, the frame is first written with one non-blocking `send()` and no trio
checkpoint: a socket with room in its buffer takes the whole frame, which spares the two scheduler
round trips of `SocketStream.send_all` (measured: they were most of the per-message cost). Only the
remainder of a frame that did not fit waits in `send_all`, under the caller's stall limit. The
writer still yields to trio every time it waits for its next wake-up.

`try_send` is the same first `send()` for a caller that must not wait (the generator's task,
sending for an idle writer): if the frame does not go out whole, the lock stays held and the
connection's writer finishes it with `send_rest`. That is why `share_lock` swaps trio-websocket's
owner-checked lock for `StreamLock`, which any task may release.
"""

from __future__ import annotations

import math
import socket
import struct

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

OP_TEXT = 0x1
OP_BINARY = 0x2

_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")


def frame_header(length: int, opcode: int) -> bytes:
    """The header of one final, unmasked frame carrying `length` payload bytes."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return _H16.pack(first, 126, length)
    return _H64.pack(first, 127, length)


def frame(payload: bytes, opcode: int) -> bytes:
    return frame_header(len(payload), opcode) + payload


async def send_frame(
    ws: WebSocketConnection, data: bytes, stall: trio.CancelScope, stall_s: float
) -> None:
    """Write an already framed message (see `frame`), serialised with trio-websocket's writes.

    `stall` is armed to expire after `stall_s` while the frame waits for the lock or for room in
    the socket.
    """
    if ws._close_reason:
        raise ConnectionClosed(ws._close_reason)
    lock = ws._stream_lock
    try:
        lock.acquire_nowait()  # free almost always: skips the lock's two checkpoints
    except trio.WouldBlock:
        stall.deadline = trio.current_time() + stall_s
        try:
            await lock.acquire()
        finally:
            stall.deadline = math.inf
    try:
        sent = _send_now(ws._stream, data)
    except OSError:  # the peer is gone (reset, broken pipe): send_rest turns it into a close
        sent = 0
    if sent == len(data):
        lock.release()
        return
    await send_rest(ws, memoryview(data)[sent:], stall, stall_s)


def try_send(ws: WebSocketConnection, data: bytes) -> int:
    """Without waiting: send what the socket takes now of an already framed message.

    Returns the bytes sent. When that is all of `data`, the lock is free again; otherwise
    (including 0: a full buffer, a closed connection, a stream that is not a plain socket) the
    stream lock stays HELD, and the caller must hand `memoryview(data)[sent:]` to `send_rest`,
    in any task, which finishes the frame and releases the lock. Returns -1, holding nothing,
    when the lock is taken (another write is under way).
    """
    lock = ws._stream_lock
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        return -1
    if ws._close_reason:
        return 0  # send_rest raises ConnectionClosed and releases
    try:
        sent = _send_now(ws._stream, data)
    except OSError:  # the peer is gone (reset, broken pipe): send_rest turns it into a close
        return 0
    if sent == len(data):
        lock.release()
    return sent


async def send_rest(
    ws: WebSocketConnection, rest: memoryview, stall: trio.CancelScope, stall_s: float
) -> None:
    """Finish a frame whose start went out under the stream lock, then release the lock.

    The caller's side holds the lock (`send_frame`, or `try_send` in another task: the lock is a
    semaphore, see `share_lock`). `stall` is armed while the rest waits for room in the socket.
    """
    lock = ws._stream_lock
    try:
        if ws._close_reason:
            raise ConnectionClosed(ws._close_reason)
        stall.deadline = trio.current_time() + stall_s
        await ws._stream.send_all(rest)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await ws._abort_web_socket()
        raise ConnectionClosed(ws._close_reason) from None
    finally:
        stall.deadline = math.inf
        lock.release()


class StreamLock:
    """A FIFO lock that any task may release: a frame can start in one task and end in another.

    Same semantics as trio's `StrictFIFOLock` (a checkpoint on acquire, ownership handed to the
    first waiter on release) without the owner check, and plain methods: trio's `Semaphore`
    does the same job but its KI-protected release was ~10% of the server's time at 100 clients.
    """

    __slots__ = ("_held", "_lot")

    def __init__(self) -> None:
        self._held = False
        self._lot = trio.lowlevel.ParkingLot()

    def locked(self) -> bool:
        return self._held

    def acquire_nowait(self) -> None:
        if self._held:
            raise trio.WouldBlock
        self._held = True

    async def acquire(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._held:
            await self._lot.park()  # `release` hands the lock over: _held stays True
        else:
            self._held = True
            await trio.lowlevel.cancel_shielded_checkpoint()

    def release(self) -> None:
        if not self._held:
            raise RuntimeError("release of an unlocked StreamLock")
        if self._lot:
            self._lot.unpark()
        else:
            self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


def share_lock(ws: WebSocketConnection) -> None:
    """Make the connection's stream lock releasable by another task than the one that took it.

    trio-websocket serialises its writes with `_stream_lock`, a `StrictFIFOLock` that only the
    task holding it may release. A frame that the generator's task starts with `try_send` and
    that does not fit in the socket buffer is finished by the connection's writer task, so the
    lock must pass between tasks: `StreamLock` gives the same mutual exclusion in the same FIFO
    order (trio-websocket only uses the lock as `async with`). Call before any write.
    """
    assert not ws._stream_lock.locked()
    ws._stream_lock = StreamLock()  # type: ignore[assignment]


def _send_now(stream: trio.abc.Stream, data: bytes) -> int:
    """Bytes of `data` a plain TCP socket takes right now (0 for TLS or a test stream)."""
    if type(stream) is not trio.SocketStream:
        return 0
    sock: socket.socket = stream.socket._sock  # type: ignore[attr-defined]
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


async def abort(ws: WebSocketConnection) -> None:
    """Drop the connection without a close handshake.

    For a reader stalled past the limit: a cancelled `send_all` may have left half a frame on the
    wire and the peer's buffer is full, so no close frame could be delivered anyway.
    """
    await ws._abort_web_socket()
    await ws._close_stream()
