"""Send pre-encoded WebSocket data frames on a trio-websocket connection without wsproto.

trio-websocket's `send_message` runs every message through wsproto's frame builder (measured at
~25 us per message, its issue #32), which is the fan-out's bottleneck. Server-to-client data frames
are simple (RFC 6455 section 5.2: FIN + opcode, unmasked, 7/16/64-bit length), so the writer builds
the header itself and writes header + payload with one `send_all`, holding the connection's own
`_stream_lock` exactly as `WebSocketConnection._send` does, so frames never interleave with the
pongs and close frames that trio-websocket writes from its reader task. trio-websocket keeps the
handshake, control frames and receiving. We never negotiate extensions (no permessage-deflate), so
an unmodified frame is what wsproto would have written. Only for whole, unfragmented messages.
"""

from __future__ import annotations

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


async def send_frame(ws: WebSocketConnection, data: bytes) -> None:
    """Write an already framed message (see `frame`), serialised with trio-websocket's writes."""
    if ws._close_reason:
        raise ConnectionClosed(ws._close_reason)
    lock = ws._stream_lock
    try:
        lock.acquire_nowait()  # free almost always: skips the lock's two checkpoints
    except trio.WouldBlock:
        await lock.acquire()
    try:
        await ws._stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        await ws._abort_web_socket()
        raise ConnectionClosed(ws._close_reason) from None
    finally:
        lock.release()


async def abort(ws: WebSocketConnection) -> None:
    """Drop the connection without a close handshake.

    For a reader stalled past the limit: a cancelled `send_all` may have left half a frame on the
    wire and the peer's buffer is full, so no close frame could be delivered anyway.
    """
    await ws._abort_web_socket()
    await ws._close_stream()
