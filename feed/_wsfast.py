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

    `stall` is armed to expire after `stall_s` while the frame waits for room in the socket.
    """
    if ws._close_reason:
        raise ConnectionClosed(ws._close_reason)
    lock = ws._stream_lock
    armed = False
    try:
        lock.acquire_nowait()  # free almost always: skips the lock's two checkpoints
    except trio.WouldBlock:
        stall.deadline, armed = trio.current_time() + stall_s, True
        await lock.acquire()
    try:
        sent = _send_now(ws._stream, data)
        if sent < len(data):
            if not armed:
                stall.deadline, armed = trio.current_time() + stall_s, True
            await ws._stream.send_all(memoryview(data)[sent:])
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await ws._abort_web_socket()
        raise ConnectionClosed(ws._close_reason) from None
    finally:
        if armed:
            stall.deadline = math.inf
        lock.release()


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
