"""The plain transport's non-blocking sends on a real socket pair: a frame sent as buffers
(`send_parts_nowait`) arrives as the buffers joined, and what a full socket did not take is
exactly the rest (`frames.unsent`), which the core keeps in its outbox."""

from __future__ import annotations

import socket

from tickwire.feed.ws.frames import Buffer, joined, unsent
from tickwire.feed.ws.transport import SocketTransport


def _recv_all(sock: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        got += sock.recv(1 << 20)
    return bytes(got)


def test_buffers_sent_in_order_arrive_joined_and_a_full_socket_leaves_the_rest() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        transport = SocketTransport(a)
        parts: list[Buffer] = [b"\x81\x05", memoryview(b"xhello")[1:], b""]
        assert transport.send_parts_nowait(parts) == 7
        assert _recv_all(b, 7) == b"\x81\x05hello"
        big: list[Buffer] = [b"head", bytes(range(256)) * 8192, b"tail"]  # 2 MiB: fills it
        whole = joined(big)
        n = transport.send_parts_nowait(big)
        assert 0 < n < len(whole)
        assert transport.send_parts_nowait([b"more"]) == 0  # full: nothing, no error
        rest = bytes(unsent(big, n))
        assert rest == whole[n:]
        assert _recv_all(b, n) == whole[:n]
