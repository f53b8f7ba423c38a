"""Heartbeat, throttle and the stall limit on trio's fake clock, over socketpairs.

A socketpair moves bytes inside the kernel at once, so `autojump_clock` never jumps while data
is in flight, and with tiny buffers a client that stops reading is a stalled reader within a few
messages; seconds of feed time pass instantly.
"""

from __future__ import annotations

import itertools
import json
import socket

import pytest
import trio
import trio.testing
from trio_websocket import wrap_client_stream

from tickwire.feed.server.server import Server, ServerConfig


async def _client(nursery, server, *, stalled=False):
    s, c = socket.socketpair()
    if stalled:
        for sock in (s, c):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    nursery.start_soon(server.handle_socket, s, ("127.0.0.1", 0))
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(c))
    # A queue of 0: once its one message is not taken, the client reads no more.
    ws = await wrap_client_stream(
        nursery, stream, "localhost", "/v1", message_queue_size=0 if stalled else 1
    )
    assert json.loads(await ws.get_message())["type"] == "welcome"
    return ws


@pytest.fixture
async def started(nursery):
    async def start(**kw):
        srv = Server(ServerConfig(port=0, **kw))
        await nursery.start(srv.run)
        return srv

    return start


async def test_heartbeat_when_idle(nursery, started, autojump_clock):
    srv = await started(heartbeat_ms=500)
    ws = await _client(nursery, srv)
    t0 = trio.current_time()
    beats = [json.loads(await ws.get_message()) for _ in range(3)]
    assert [b["type"] for b in beats] == ["heartbeat"] * 3
    assert [b["seq"] for b in beats] == [1, 2, 3]
    assert trio.current_time() - t0 == pytest.approx(1.5, abs=0.05)


async def test_throttle_interval_is_kept(nursery, started, autojump_clock):
    srv = await started(heartbeat_ms=0)
    ws = await _client(nursery, srv)
    await ws.send_message(json.dumps({"op": "throttle", "interval_ms": 250}))
    await ws.send_message(json.dumps({"op": "subscribe", "symbols": ["*"], "snapshot": False}))
    assert json.loads(await ws.get_message())["op"] == "throttle"
    assert json.loads(await ws.get_message())["op"] == "subscribe"
    times = []
    for _ in range(6):
        msg = json.loads(await ws.get_message())
        assert msg["type"] == "ticks"
        syms = [t["symbol"] for t in msg["ticks"]]
        assert len(syms) == len(set(syms))  # the latest tick per symbol, once
        times.append(trio.current_time())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.24  # a broken throttle shows ~1 ms gaps; receive times jitter a hair


async def test_stalled_reader_is_closed_and_never_delays_others(nursery, started, autojump_clock):
    srv = await started(stall_ms=2000, heartbeat_ms=0, activity=5.0)
    stalled = await _client(nursery, srv, stalled=True)
    await stalled.send_message(json.dumps({"op": "subscribe", "symbols": ["*"]}))
    healthy = await _client(nursery, srv)
    await healthy.send_message(json.dumps({"op": "subscribe", "symbols": ["*"]}))
    received = 0
    t0 = trio.current_time()
    max_gap = 0.0
    last = t0
    while trio.current_time() - t0 < 3.0:  # the stalled one never reads during all of this
        await healthy.get_message()
        now = trio.current_time()
        max_gap, last = max(max_gap, now - last), now
        received += 1
        for conn in srv.connections:
            # whatever a subscriber has not sent is read from the hub's last-value cache:
            # nothing queues per connection except the generation it has sent up to
            assert srv.hub.gen - conn.core.sub.sent_gen >= 0
            assert len(conn.core.outbox) < 1 << 20
    # never held up by the stalled one (that would show as a gap near the 2 s stall limit)
    assert received > 1000 and max_gap < 0.1
    assert len(srv.connections) == 1  # only the healthy one is left: the stalled one was closed
    assert srv.registry.held == 1  # and its socket released


async def test_no_subscriber_steps_the_market_rarely_and_catches_up_on_demand(
    nursery, started, autojump_clock
):
    srv = await started(heartbeat_ms=0)
    ws = await _client(nursery, srv)
    batches0 = srv.hub.batches_published
    await trio.sleep(1.0)
    assert srv.hub.batches_published - batches0 <= 25  # ~every 50 ms, not every 1 ms
    t = trio.current_time()
    await ws.send_message(json.dumps({"op": "subscribe", "symbols": ["*"]}))
    assert json.loads(await ws.get_message())["type"] == "ack"
    snap = json.loads(await ws.get_message())
    assert snap["type"] == "snapshot"
    newest = max(tick["ts"] for tick in snap["ticks"])
    # the market was stepped to the subscribe (~2 ticks/ms), not left up to 50 ms behind
    assert newest >= srv.ctx.now_ns(t) - 10_000_000
    # subscribed: the cadence is back to every millisecond
    batches1 = srv.hub.batches_published
    await trio.sleep(0.1)
    assert srv.hub.batches_published - batches1 >= 30  # sparse: 2; a batch may be empty
    assert srv.counters.cadence_overruns == 0
