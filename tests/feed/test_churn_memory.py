"""A server's memory under connection churn: what a read allocates, and what a client that came
and went leaves behind.

A read used to be `sock.recv(65536)`: a 64 KiB block from the C heap, shrunk to the bytes that
came. A churning client makes a few reads (its request, its subscribe, its close), and those
blocks, taken among the history's many long-lived small allocations, left the heap with holes
it could not reuse: the soak (`test_soak.py`, slow) saw the server's RSS grow with every client
that came and went while Python's own objects stayed flat. A read now lands in one buffer per
thread and leaves as a bytes object of its size, measured here with tracemalloc (which sees
CPython's and numpy's allocations). The churn below also checks that every per-connection
structure of a real server is back to its size once the clients are gone.
"""

from __future__ import annotations

import random
import socket
import tracemalloc

import trio
from _rawws import handshake, reset, text_frame

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.ws.transport import SocketTransport

CHURN = 500  # ~5 s on a loaded 2-core machine; 2,000 took 19 s


def _peak_of(call: object) -> tuple[object, int]:
    """What `call()` returns and the most memory it held at once beyond what was there before."""
    assert callable(call)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_a_small_read_allocates_about_what_it_returns() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        transport = SocketTransport(a)
        assert transport.recv_nowait() is None  # nothing there yet (and the buffer exists)
        request = b"GET /v1 HTTP/1.1\r\n" + b"x" * 300
        b.sendall(request)
        data, peak = _peak_of(transport.recv_nowait)
        assert data == request
        # before: ~65.6 KiB (a 64 KiB block, then shrunk); now the bytes object alone
        assert peak < len(request) + 1024, f"a read of {len(request)} B held {peak} B"
        b.sendall(b"y" * 100_000)  # more than one read's worth: two reads, in order
        first = transport.recv_nowait()
        assert first is not None and len(first) == 65536
        rest = b""
        while len(first) + len(rest) < 100_000:
            more = transport.recv_nowait()
            assert more
            rest += more
        assert first + rest == b"y" * 100_000
        b.close()
        assert transport.recv_nowait() == b""  # EOF


async def _client(port: int, rng: random.Random) -> None:
    """One churning client as the soak's: subscribe, read a little, leave one of three ways."""
    reader, status, _ = await handshake(port)
    assert status == 101
    await reader.message()  # welcome
    symbols = ["*"] if rng.random() < 0.2 else ["AAPL", "MSFT", "NVDA"][: rng.randint(1, 3)]
    await reader.stream.send_all(text_frame({"op": "subscribe", "symbols": symbols, "id": 1}))
    await reader.message()  # its ack
    how = rng.random()
    if how < 0.3:
        reset(reader.stream)
        return
    if how < 0.6:
        await reader.stream.send_all(b"\x88\x82abcd" + bytes([0x03 ^ 0x61, 0xE8 ^ 0x62]))  # 1000
    await reader.stream.aclose()


def _sizes(srv: Server) -> dict[str, int]:
    """Everything the server keeps per connection, by what it is."""
    reg = srv.registry
    return {
        "held": reg.held,
        "per_ip": len(reg.per_ip),
        "open": len(reg.open),
        "handshaking": len(reg.handshaking) + len(reg.handshaking_by_ip),
        "subscribers": srv.ctx.subscribers,
        "clients": srv.statistics()["clients"],
        "wildcard": srv.hub.statistics()["wildcard_subscribers"],
        "closes_kinds": len(srv.counters.closes),
    }


async def test_churned_clients_leave_nothing_behind(nursery: trio.Nursery) -> None:
    srv = Server(ServerConfig(port=0, heartbeat_ms=0))
    await nursery.start(srv.run)
    port = int(srv.url.rsplit(":", 1)[1].split("/")[0])
    rng = random.Random(9)
    steady, status, _ = await handshake(port)  # one client stays throughout
    assert status == 101
    await steady.message()
    with trio.fail_after(60):
        for _ in range(20):  # warm-up: every way of leaving seen once
            await _client(port, rng)
        while srv.statistics()["clients"] > 1:
            await trio.sleep(0.01)
        baseline = _sizes(srv)
        for _ in range(CHURN):
            await _client(port, rng)
        while srv.statistics()["clients"] > 1 or srv.registry.held > 1:
            await trio.sleep(0.01)  # the last ones' tasks finish their close
    assert _sizes(srv) == baseline
    assert srv.statistics()["connections_total"] == CHURN + 21
    await steady.stream.aclose()
