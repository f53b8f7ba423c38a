"""Heartbeat, throttle and the stall limit on trio's fake clock, over in-memory streams.

`lockstep_stream_pair` only moves bytes while the other side reads, so a client that never reads
is a perfectly stalled reader; `autojump_clock` makes seconds of feed time pass instantly.
"""

from __future__ import annotations

import itertools
import json

import pytest
import trio
import trio.testing
from trio_websocket import wrap_client_stream

from tickwire.feed.server import Server, ServerConfig


async def _client(nursery, server, *, lockstep=False):
    if lockstep:
        c, s = trio.testing.lockstep_stream_pair()
    else:
        c, s = trio.testing.memory_stream_pair()
    nursery.start_soon(server.handle_stream, s)
    ws = await wrap_client_stream(nursery, c, "localhost", "/v1")
    assert json.loads(await ws.get_message())["type"] == "welcome"
    return ws


@pytest.fixture
async def started(nursery, autojump_clock):
    async def start(**kw):
        srv = Server(ServerConfig(port=0, **kw))
        await nursery.start(srv.run_market)
        return srv

    return start


async def test_heartbeat_when_idle(nursery, started):
    srv = await started(heartbeat_ms=500)
    ws = await _client(nursery, srv)
    t0 = trio.current_time()
    beats = [json.loads(await ws.get_message()) for _ in range(3)]
    assert [b["type"] for b in beats] == ["heartbeat"] * 3
    assert [b["seq"] for b in beats] == [1, 2, 3]
    assert trio.current_time() - t0 == pytest.approx(1.5, abs=0.05)


async def test_throttle_interval_is_kept(nursery, started):
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


async def test_stalled_reader_is_closed_and_never_delays_others(nursery, started):
    srv = await started(stall_ms=2000, heartbeat_ms=0, activity=5.0)
    stalled = await _client(nursery, srv, lockstep=True)
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
            assert srv.hub.gen - conn.sub.sent_gen >= 0
    # never held up by the stalled one (that would show as a gap near the 2 s stall limit)
    assert received > 1000 and max_gap < 0.1
    codes = {c.close_code for c in srv.connections}
    assert codes == {None}  # only the healthy one is left: the stalled one was closed
    assert len(srv.connections) == 1
