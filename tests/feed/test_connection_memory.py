"""What an idle subscribed connection costs the server: one task, no nursery, a few KiB.

(Its timers are rung by the server's one clock task, shared by every connection.)

The bench's RSS row (`feed/bench/memory.py`) measures it from outside, where the allocator and
the page size blur a few KiB a connection; these tests pin the cause of the last regression
(each connection had a reader task and a writer task in a nursery of its own) with figures that
do not move with the machine's load: the tasks trio holds, and the bytes Python allocated.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import tracemalloc

import trio

from tickwire import simulators
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Universe

QUIET = Universe.default().symbols[-1]
REQUEST = (
    b"GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SUBSCRIBE = json.dumps({"op": "subscribe", "symbols": [QUIET]}).encode()
# A client frame must be masked; a zero mask leaves the payload as it is.
SUBSCRIBE_FRAME = bytes([0x81, 0x80 | len(SUBSCRIBE)]) + bytes(4) + SUBSCRIBE


def _server() -> Server:
    # No history (it grows with the market, not with connections) and a near-silent market.
    return Server(ServerConfig(port=0, history_s=0, activity=0.01, max_connections=1000))


class _Client:
    """A raw TCP client: the handshake and one subscribe frame, then it reads nothing more."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.sock.sendall(REQUEST)
        self.got = b""

    def read(self) -> bytes:
        try:
            while chunk := self.sock.recv(65536):
                self.got += chunk
        except BlockingIOError:
            pass
        return self.got


async def _until(condition: object, what: str) -> None:
    """Poll a condition on real sockets (the server answers at its own pace)."""
    with trio.fail_after(20):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.005)


async def _subscribed(srv: Server, port: int, n: int) -> list[_Client]:
    clients = [_Client(port) for _ in range(n)]
    await _until(lambda: all(b'"welcome"' in c.read() for c in clients), "welcome")
    for c in clients:
        c.sock.sendall(SUBSCRIBE_FRAME)
    await _until(lambda: all(b'"ack"' in c.read() for c in clients), "ack")
    return clients


def _tasks(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    out = [task]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            out += _tasks(child)
    return out


def _shell_tasks() -> list[trio.lowlevel.Task]:
    return [t for t in _tasks(trio.lowlevel.current_root_task()) if "tickwire.feed.ws" in t.name]


async def test_an_idle_subscribed_connection_is_one_task_with_no_nursery(nursery):
    srv = _server()
    await nursery.start(srv.run)
    port = int(srv.url.rsplit(":", 1)[1].split("/")[0])
    clients = await _subscribed(srv, port, 20)
    try:
        assert len(srv.connections) == 20
        names = [t.name.rsplit(".", 2)[-2:] for t in _shell_tasks()]
        assert sorted(names) == [["Clock", "_run"]] + [["Connection", "run"]] * 20
        ours = [t for t in _shell_tasks() if t.name.endswith("Connection.run")]
        assert [t.child_nurseries for t in ours] == [[]] * 20
    finally:
        for c in clients:
            c.sock.close()
    await _until(lambda: not srv.connections and not _shell_tasks(), "all gone")


async def test_an_idle_subscribed_connection_allocates_a_few_kib(nursery):
    """Python's own allocations per connection, counted by tracemalloc: about 7.6 KB now (the
    machine, wsproto, one task waiting to read, an alarm), 12.4 KB with a reader and a writer
    task in a nursery of their own, 8.4 KB with a cancel scope for the reader's timers."""
    srv = _server()
    await nursery.start(srv.run)
    port = int(srv.url.rsplit(":", 1)[1].split("/")[0])
    warm = await _subscribed(srv, port, 5)  # first-use costs (imports, caches) out of the count
    n = 100
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        clients = await _subscribed(srv, port, n)
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    try:
        here = os.path.abspath(__file__)
        # The test's own clients are not the server's; nor is the market's memory: it makes a
        # chunk every 0.5 s, connected or not, and its work arrays grow to the largest chunk yet
        # (~330 KB in one window once: 3.3 KB a connection that no connection caused).
        market = os.path.join(os.path.dirname(os.path.abspath(simulators.__file__)), "*")
        mine = [tracemalloc.Filter(False, here), tracemalloc.Filter(False, market)]
        grown = after.filter_traces(mine).compare_to(before.filter_traces(mine), "filename")
        per_conn = sum(d.size_diff for d in grown) / n
        top = "\n".join(str(d) for d in grown[:8])
        assert 2_000 < per_conn < 9 * 1024, f"{per_conn:.0f} B a connection; top:\n{top}"
    finally:
        for c in warm + clients:
            c.sock.close()
    await _until(lambda: not srv.connections, "all gone")
