"""Listening sockets and byte transports on stdlib sockets and trio's public low-level waits.

Why not `trio.SocketStream`: the generator sends to idle connections itself, in its own task,
with one synchronous non-blocking `send()` (a task switch per message was a third of the server's
time). A stream's `send_all` cannot do that, and reaching into it for its socket is a private
attribute. Here we own the sockets: `sock.send()` non-blocking, `trio.lowlevel.wait_readable` /
`wait_writable` only when the kernel says "would block", `notify_closing` before `close` so that
a task waiting on the socket wakes up instead of waiting forever.

TLS (`wss://`) is `ssl.SSLContext.wrap_bio`: the same shape over memory BIOs, with a small
ciphertext backlog inside the transport (`backlog`) when the socket does not take a whole record.
Imports trio only for those waits; never a third party's private attribute.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import struct
import threading
from collections.abc import Coroutine
from typing import Any

import trio

from tickwire.feed.ws.frames import Buffer
from tickwire.simulators.errors import UserError

_BACKLOG = 1024  # listen(2) queue: bursts of reconnecting clients wait in the kernel, not here
_RECV_BYTES = 65536  # at most this much per read
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset, never blocks


def open_listeners(host: str, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for every address `host` resolves to.

    As `trio.open_tcp_listeners`: one socket per address family (IPv6 sockets are v6-only so
    that `::` and `0.0.0.0` can coexist); with port 0 every socket gets the first one's port.
    `reuse_port` sets SO_REUSEPORT so that several processes can share the port.
    Raises UserError with a hint that fits the failure.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(
            f"cannot resolve host {host!r}: {getattr(exc, 'strerror', None) or exc}"
            " (give an address of this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0)"
        ) from None
    seen: set[tuple[int, object]] = set()
    socks: list[socket.socket] = []
    try:
        for family, type_, proto, _, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            sock = socket.socket(family, type_, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            sock.bind(addr)
            sock.listen(_BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in socks:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            hint = "is another server running? pick another --port"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            hint = "ports below 1024 need privileges; pick another --port"
        else:
            hint = "cannot bind that host: give an address of this machine, e.g. 127.0.0.1"
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc} ({hint})") from None
    return socks


def configure(sock: socket.socket) -> None:
    """An accepted socket: non-blocking, no Nagle delay (ticks go out as they are made)."""
    sock.setblocking(False)
    with contextlib.suppress(OSError):  # not TCP (a socketpair in tests), or already reset
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SocketTransport:
    """A plain TCP connection: non-blocking calls, and waits for when they would block."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @property
    def backlog(self) -> bool:
        """Bytes accepted by send_nowait that the socket has not taken yet (TLS only)."""
        return False

    def recv_nowait(self) -> bytes | None:
        """Bytes read now; b"" at EOF; None if nothing is there yet. OSError: the peer reset."""
        buf = _recv_buffer()
        try:
            n = self.sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return None
        return bytes(memoryview(buf)[:n])

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """How much of `data` the socket took now (0 if its buffer is full). OSError: gone."""
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    def send_parts_nowait(self, parts: list[Buffer]) -> int:
        """How much of `parts`, sent in order as one buffer, the socket took now (`sendmsg`:
        gathered by the kernel, not joined here first)."""
        try:
            return self.sock.sendmsg(parts)
        except (BlockingIOError, InterruptedError):
            return 0

    def flush_nowait(self) -> bool:
        return True

    # The waits return trio's own coroutine rather than await it in one of ours: an idle
    # connection waits here all its life, and a frame less is ~0.2 KB less per connection.
    def wait_readable(self) -> Coroutine[Any, Any, None]:
        return trio.lowlevel.wait_readable(self.sock)

    def wait_writable(self) -> Coroutine[Any, Any, None]:
        return trio.lowlevel.wait_writable(self.sock)

    def close(self) -> None:
        """Release the descriptor; any task waiting on it wakes with ClosedResourceError."""
        if self.sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    def abort(self) -> None:
        """Close with a reset (SO_LINGER 0): a stalled peer's unread data is dropped now."""
        with contextlib.suppress(OSError):
            # struct linger {l_onoff = 1, l_linger = 0}: a linger of 0 s resets at once. Any
            # other linger makes close() block the whole event loop for that long.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.close()


class TLSTransport(SocketTransport):
    """TLS over the same socket, with `ssl.SSLObject` on memory BIOs (sans-IO TLS).

    `send_nowait` encrypts all of `data` it accepts; ciphertext the socket does not take waits in
    `backlog` (one message at most: nothing more is accepted until it is gone).
    """

    __slots__ = ("_in", "_out", "_pending", "tls")

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        super().__init__(sock)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out, server_side=True)
        self._pending = bytearray()

    @property
    def backlog(self) -> bool:
        return bool(self._pending) or self._out.pending > 0

    def flush_nowait(self) -> bool:
        """Send buffered ciphertext; True once none is left."""
        if self._out.pending:
            self._pending += self._out.read()
        while self._pending:
            n = super().send_nowait(self._pending)
            if n == 0:
                return False
            del self._pending[:n]
        return True

    def recv_nowait(self) -> bytes | None:
        buf = _recv_buffer()
        while True:
            try:
                # typeshed says bytes; with a buffer it is the count read into it
                n: int = self.tls.read(_RECV_BYTES, buf)  # type: ignore[assignment]
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError as exc:
                raise ConnectionResetError(f"TLS: {exc.reason or exc}") from None
            else:
                self.flush_nowait()  # e.g. TLS 1.3 session tickets after the handshake
                return bytes(memoryview(buf)[:n])
            self.flush_nowait()  # the handshake's own records
            raw = super().recv_nowait()
            if raw is None:
                return None
            if raw == b"":
                self._in.write_eof()
                try:
                    end: int = self.tls.read(_RECV_BYTES, buf)  # type: ignore[assignment]
                    return bytes(memoryview(buf)[:end])
                except ssl.SSLError:
                    return b""
            self._in.write(raw)

    def send_parts_nowait(self, parts: list[Buffer]) -> int:
        return self.send_nowait(b"".join(parts))  # encrypted as one record anyway

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        if not self.flush_nowait() or not data:
            return 0
        try:
            n = self.tls.write(data)
        except ssl.SSLWantReadError:  # still handshaking: the reader's turn first
            return 0
        except ssl.SSLError as exc:
            raise ConnectionResetError(f"TLS: {exc.reason or exc}") from None
        self.flush_nowait()
        return n


Transport = SocketTransport | TLSTransport

_local = threading.local()  # one read buffer per thread (a server runs in one)


def _recv_buffer() -> bytearray:
    """The thread's read buffer: every read lands here and leaves as a bytes object of exactly
    its size. `sock.recv(65536)` allocated 64 KiB each time and shrank it: per client a few
    such blocks, among the history's long-lived small ones, fragmented the C heap until the
    server's memory grew with every client that came and went (see README Design)."""
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(_RECV_BYTES)
    return buf
