"""`pump.send_now` on a real socket pair: what one call sends, and what it leaves to the writer."""

from __future__ import annotations

import socket
from collections.abc import Coroutine
from typing import Any

from tests.feed.test_core import opened_with
from tickwire.feed.ws import pump
from tickwire.feed.ws.transport import SocketTransport


class Counted(SocketTransport):
    """A real socket's transport that takes at most `room` bytes more (None: what the socket
    takes), as a socket with little room does, and counts the writer's waits for room."""

    __slots__ = ("room", "waits")

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.room: int | None = None
        self.waits = 0  # wait_writable calls

    def wait_writable(self) -> Coroutine[Any, Any, None]:
        self.waits += 1
        if self.room == 0:
            self.room = None  # the peer read: room again once the wait is over
        return super().wait_writable()

    def send_parts_nowait(self, parts: list[bytes | memoryview]) -> int:
        return self.send_nowait(b"".join(parts))

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        if self.room is not None:
            data = data[: self.room]
        n = super().send_nowait(data)
        if self.room is not None:
            self.room -= n
        return n


def _pair() -> tuple[Counted, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    return Counted(ours), theirs


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return out
        out += chunk


def test_a_reader_behind_gets_one_message_per_turn_its_backlog_stays_in_the_hub() -> None:
    # Three takes' worth (max_take=3, 7 records): one message goes, the rest is left to the
    # writer, a message a turn, so that a reader slower than the feed stays behind in the hub
    # (whose lag bound sees it), not in its socket's buffers.
    core, market, peer = opened_with(max_take=3)
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush()
    transport, theirs = _pair()
    market.publish([0, 1, 2, 3, 4, 0, 1])
    assert not pump.send_now(core, transport, 0.0)  # more waits: the writer's turn
    assert [m["seq"] for m in peer.receive(_read_all(theirs))] == [1]
    assert core.sub.cursor == 3 and core.data_waiting(0.0)
    theirs.close()
    transport.sock.close()


def test_what_a_full_socket_did_not_take_waits_in_the_outbox_in_order() -> None:
    core, market, peer = opened_with(max_take=3)
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush()
    transport, theirs = _pair()
    transport.room = 10  # the socket takes 10 bytes of the first message
    market.publish([0, 1, 2, 3, 4, 0, 1])
    assert not pump.send_now(core, transport, 0.0)  # the rest waits for the writer
    assert core.outbox and core.messages_sent == 2 + 1
    transport.room = None  # the peer reads: room again
    while not pump.send_now(core, transport, 0.0):
        pass
    msgs = peer.receive(_read_all(theirs))
    assert [m["seq"] for m in msgs] == [1, 2, 3] and [len(m["ticks"]) for m in msgs] == [3, 3, 1]
    theirs.close()
    transport.sock.close()


async def test_the_writer_of_a_reader_behind_yields_a_turn_not_a_wait_for_room() -> None:
    # More data due, a socket with room: before, the writer waited on epoll for writability
    # (which it had) before each message; now it lets the others run and sends the next.
    core, market, peer = opened_with(max_take=3)
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush()
    transport, theirs = _pair()
    market.publish([0, 1, 2, 3, 4, 0, 1])
    signals = pump.Signals()
    signals.writer = True
    assert await pump.write(core, transport, signals, lambda now: None) is None
    assert [m["seq"] for m in peer.receive(_read_all(theirs))] == [1, 2, 3]
    assert transport.waits == 0 and not signals.writer
    theirs.close()
    transport.sock.close()


async def test_the_writer_waits_for_room_when_the_socket_is_full() -> None:
    core, market, peer = opened_with(max_take=3)
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush()
    transport, theirs = _pair()
    transport.room = 10
    market.publish([0, 1, 2])
    assert not pump.send_now(core, transport, 0.0) and core.outbox
    signals = pump.Signals()
    signals.writer = True  # the socket has no room until the writer waited for it
    assert await pump.write(core, transport, signals, lambda now: None) is None
    assert transport.waits == 1 and not core.outbox
    assert [m["seq"] for m in peer.receive(_read_all(theirs))] == [1]
    theirs.close()
    transport.sock.close()
