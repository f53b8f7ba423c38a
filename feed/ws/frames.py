"""WebSocket frames we write ourselves, and the budget on the frames a client sends.

Data frames are final, unmasked and never use an extension (none is negotiated), so writing
them here gives the bytes wsproto would write, without its per-message cost. wsproto still
parses every incoming frame and writes the control and close frames. Sans-IO: no trio, no
socket, no clock (time comes in as monotonic seconds).
"""

from __future__ import annotations

import os
import struct
from typing import TypeAlias

OP_TEXT = 0x1
OP_BINARY = 0x2
_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16

# Frames a client may send: 100 a second (Coinbase's limit on client messages), in bursts of
# 200. A request is one frame; a client fragmenting a 64 KiB request into 1 KiB frames, or
# answering every ping, stays far below it.
FRAMES_PER_S = 100.0
FRAMES_BURST = 200


class FrameBudget:
    """A token bucket over the frames a client sends (monotonic seconds)."""

    __slots__ = ("_last_s", "_tokens", "burst", "rate_per_s")

    def __init__(self, now: float, rate_per_s: float = FRAMES_PER_S, burst: int = FRAMES_BURST):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._last_s = now

    def take(self, now: float) -> bool:
        """One frame at `now`: False once the client has spent the budget."""
        elapsed = max(0.0, now - self._last_s)
        self._last_s = now
        tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
        if tokens < 1.0 - 1e-9:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


def frame_header(length: int, opcode: int) -> bytes:
    """The header of one final, unmasked frame carrying `length` payload bytes (RFC 6455 5.2)."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return _H16.pack(first, 126, length)
    return _H64.pack(first, 127, length)


def frame(payload: bytes, opcode: int) -> bytes:
    return frame_header(len(payload), opcode) + payload


# Outgoing data as one bytes object, or as buffers to send in order with one `sendmsg` (a frame
# whose header differs per reader ahead of a body shared by all: no copy of the body each).
Buffer: TypeAlias = bytes | memoryview
Out: TypeAlias = bytes | list[Buffer]
# A body at least this long is sent as buffers (`sendmsg`) rather than copied behind its header:
# measured on loopback TCP (a send, best of 8), the gather costs 0.15 us more than the copy at
# 2 KB, as much at 8 and 25 KB, and saves 3 us a send at 80 KB and 4-8 at 170 KB (a reader
# catching up takes up to 1024 ticks, ~170 KB JSON, 64 KiB binary).
GATHER_BYTES = 32 * 1024
# A list of at most this many buffers is sent as it is (one `sendmsg`: the system's IOV_MAX,
# 1024 on Linux; POSIX promises at least 16); a longer one is joined first.
MAX_PARTS = max(16, min(_IOV_MAX, 1024))


def frame_parts(head: bytes, body: bytes, opcode: int) -> Out:
    """One frame whose payload is `head` then `body` (shared by several readers): a large body
    is sent as it is behind the reader's own header, a small one copied (`GATHER_BYTES`)."""
    first = frame_header(len(head) + len(body), opcode) + head
    return [first, body] if len(body) >= GATHER_BYTES else first + body


def unsent(data: Out, n: int) -> Buffer:
    """What is left of `data` after its first `n` bytes went out (b"": nothing)."""
    if not isinstance(data, list):
        return memoryview(data)[n:] if n < len(data) else b""
    if n >= sum(map(len, data)):  # the common case: all of it went
        return b""
    for i, part in enumerate(data):
        if n < len(part):
            return b"".join([memoryview(part)[n:], *data[i + 1 :]])
        n -= len(part)
    return b""


def joined(data: Out) -> bytes:
    """`data` as one bytes object."""
    return b"".join(data) if isinstance(data, list) else data


def short_reason(reason: str) -> str:
    """A close reason fits the 123 bytes a close frame allows."""
    data = reason.encode()
    return reason if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."
