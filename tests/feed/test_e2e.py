"""End to end over real loopback sockets: the in-process server and our client library."""

from __future__ import annotations

import base64
import itertools
import os
import socket
import struct

import numpy as np
import pytest
import trio
from trio.testing import MockClock
from trio_websocket import ConnectionClosed, open_websocket_url

from tickwire.feed import Batch, ConnectError, ProtocolError, Status, connect
from tickwire.feed.server.server import Server, ServerConfig


async def _batches(feed, n):
    out = []
    async for ev in feed:
        if isinstance(ev, Batch):
            out.append(ev)
            if len(out) == n:
                return out
    raise AssertionError("feed ended")


@pytest.mark.parametrize("encoding", ["json", "binary"])
async def test_subscribe_stream_unsubscribe(server: Server, encoding: str) -> None:
    with trio.fail_after(20):
        async with connect(server.url, encoding=encoding) as feed:
            assert await feed.subscribe(["AAPL", "MSFT"]) == ["AAPL", "MSFT"]
            batches = await _batches(feed, 30)
            assert batches[0].kind == "snapshot"
            assert sorted(batches[0].symbols) == ["AAPL", "MSFT"]
            seqs = [b.seq for b in batches]
            assert seqs == list(range(seqs[0], seqs[0] + 30)), "connection seq has gaps"
            last: dict[str, int] = {}
            for b in batches:
                assert set(b.symbols) <= {"AAPL", "MSFT"}
                assert np.all(b.ticks["bid"] < b.ticks["ask"])
                for sym, seq in zip(b.symbols, b.ticks["seq"].tolist(), strict=True):
                    assert seq > last.get(sym, -1)
                    last[sym] = seq
            # full duplex: change the subscription while data streams
            assert await feed.unsubscribe(["MSFT"]) == ["AAPL"]
            await feed.subscribe(["NVDA"], snapshot=False)
            after = await _batches(feed, 20)
            later = {s for b in after[3:] for s in b.symbols}
            assert "MSFT" not in later and later <= {"AAPL", "NVDA"}


async def test_wildcard_snapshot_and_stats(server: Server) -> None:
    with trio.fail_after(20):
        async with connect(server.url, encoding="binary") as feed:
            assert await feed.subscribe("*") == ["*"]
            snap = (await _batches(feed, 1))[0]
            assert snap.kind == "snapshot" and len(snap) == len(server.hub)
            await _batches(feed, 5)
            stats = await feed.stats()
            assert stats["subscriptions"] == ["*"]
            assert stats["ticks_sent"] >= len(server.hub)
            assert stats["server"]["clients"] == 1
            assert stats["server"]["ticks_published"] > 0
            refs = await feed.symbols()
            assert refs[0]["symbol"] == "AAPL" and refs[0]["id"] == 0 and refs[0]["simulated"]
            # The round trip in seconds: bounded by the time around the call, not by a guess at
            # how fast this machine is (a unit slip, ms or ns, would break the upper bound).
            t0 = trio.current_time()
            rtt = await feed.ping()
            assert 0 < rtt <= trio.current_time() - t0


async def test_throttle_conflates(nursery: trio.Nursery, mock_clock: MockClock) -> None:
    # Virtual time: the server's throttle deadlines and our receive times are read off one clock
    # that stands still while bytes move on loopback, so the gaps measured are the throttle's and
    # not the machine's load. A false jump (I/O slower than the threshold) only moves the clock
    # to the next cadence step: it can widen a gap, never narrow it.
    mock_clock.autojump_threshold = 0.005
    server = Server(ServerConfig(port=0, cadence_ms=20, heartbeat_ms=0))
    await nursery.start(server.run)
    with trio.fail_after(60):
        async with connect(server.url) as feed:
            await feed.throttle(200)
            await feed.subscribe(["*"], snapshot=False)
            batches: list[Batch] = []
            times: list[float] = []
            async for ev in feed:
                if isinstance(ev, Batch):
                    batches.append(ev)
                    times.append(trio.current_time())
                    if len(batches) == 6:
                        break
            for b in batches:
                assert len(set(b.symbols)) == len(b)  # one (latest) tick per symbol
            assert sum(b.conflated for b in batches[1:]) > 0
            gaps = [b - a for a, b in itertools.pairwise(times)]
            # Never faster than 200 ms (an ignored throttle sends every 20 ms step); and with a
            # busy market on "*", no slower than the interval plus a few steps.
            assert min(gaps) >= 0.2 - 1e-9, gaps
            assert max(gaps) <= 0.2 + 3 * 0.02 + 1e-9, gaps
            stats = await feed.stats()
            assert stats["ticks_conflated"] > 0 and stats["throttle_ms"] == 200


async def test_errors_are_typed(server: Server) -> None:
    with trio.fail_after(10):
        async with connect(server.url) as feed:
            with pytest.raises(ProtocolError) as err:
                await feed.subscribe(["AAPL", "NOPE", "ZZZ"])
            assert err.value.code == "unknown_symbol"
            assert err.value.symbols == ("NOPE", "ZZZ")
            assert feed.subscription == []  # atomic: AAPL was not added either
            with pytest.raises(ProtocolError, match="interval_ms"):
                await feed.throttle(-5)


async def test_unreachable_server_is_a_clear_error() -> None:
    with trio.fail_after(10), pytest.raises(ConnectError, match="cannot connect"):
        async with connect("ws://127.0.0.1:9/v1"):
            pass


async def test_connection_cap_closes_with_1013(nursery: trio.Nursery) -> None:
    srv = Server(ServerConfig(port=0, max_connections=1))
    await nursery.start(srv.run)
    with trio.fail_after(10):
        async with connect(srv.url), open_websocket_url(srv.url) as ws2:
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws2.get_message()
            assert ws2.closed.code == 1013


async def test_shutdown_closes_clients_with_1001(nursery: trio.Nursery) -> None:
    srv = Server(ServerConfig(port=0))
    await nursery.start(srv.run)
    with trio.fail_after(10):
        async with open_websocket_url(srv.url) as ws:
            await ws.get_message()  # welcome
            await srv.shutdown()
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.get_message()
            assert ws.closed.code == 1001


async def test_reconnect_resubscribes_and_reports_the_gap(nursery: trio.Nursery) -> None:
    first = Server(ServerConfig(port=0))
    scope = trio.CancelScope()

    async def run_first(task_status=trio.TASK_STATUS_IGNORED):
        with scope:
            await first.run(task_status=task_status)

    await nursery.start(run_first)
    port = int(first.url.rsplit(":", 1)[1].split("/")[0])
    with trio.fail_after(30):
        async with connect(first.url, backoff_initial_s=0.05, backoff_max_s=0.2) as feed:
            await feed.subscribe(["AAPL", "MSFT"])
            await _batches(feed, 3)
            await first.shutdown()  # the server goes away mid-stream
            statuses: list[Status] = []
            restarted = False
            gap = None
            async for ev in feed:
                if isinstance(ev, Status) and ev.state == "reconnecting":
                    statuses.append(ev)
                    if len(statuses) == 3 and not restarted:  # down for a few attempts, then back
                        second = Server(ServerConfig(port=port, seed=1))
                        await nursery.start(second.run)
                        restarted = True
                elif type(ev).__name__ == "Gap":
                    gap = ev
                elif isinstance(ev, Batch) and gap is not None and ev.kind == "ticks":
                    break
            # Another server run (a new epoch): nothing before it can be recovered or counted.
            assert gap is not None and gap.reason == "restarted" and gap.lost is None
            assert gap.downtime_s > 0
            assert feed.subscription == ["AAPL", "MSFT"] and feed.reconnects == 1
            # backoff grows (with jitter in [0.5, 1] of the doubled delay)
            assert all(s.retry_in_s is not None and s.retry_in_s <= 0.2 for s in statuses)
            assert [s.attempt for s in statuses[:3]] == [1, 2, 3]
            await _batches(feed, 3)  # and the stream continues
            await second.shutdown()


async def test_wss_with_a_certificate(nursery: trio.Nursery, tmp_path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    pem = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    srv = Server(ServerConfig(port=0, certfile=str(pem)))
    await nursery.start(srv.run)
    assert srv.url.startswith("wss://")
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with trio.fail_after(10):
        async with connect(srv.url, ssl_context=client_ctx) as feed:
            await feed.subscribe(["AAPL"])
            assert (await _batches(feed, 2))[0].kind == "snapshot"


async def test_a_failing_connection_is_closed_1011_and_others_keep_streaming(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken():
        raise RuntimeError("simulated bug in one connection")

    with trio.fail_after(10):
        async with connect(server.url) as healthy, open_websocket_url(server.url) as victim:
            await healthy.subscribe(["AAPL"])
            await victim.get_message()  # welcome
            monkeypatch.setattr(server, "statistics", broken)
            await victim.send_message('{"op": "stats"}')
            with pytest.raises(ConnectionClosed):
                while True:
                    await victim.get_message()
            assert victim.closed.code == 1011
            assert len(await _batches(healthy, 5)) == 5


async def test_a_failure_while_the_generator_sends_closes_only_that_connection(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Data goes out from the generator's task when a writer is idle: a bug there must not stop
    # the market (everyone's data) but close the one connection with 1011.
    with trio.fail_after(10):
        async with connect(server.url) as healthy, open_websocket_url(server.url) as victim:
            await healthy.subscribe(["AAPL"])
            await victim.get_message()  # welcome
            await victim.send_message('{"op": "subscribe", "symbols": ["*"], "snapshot": false}')
            await victim.get_message()  # ack
            await victim.get_message()  # data: its writer is idle, the generator sends
            take = server.hub.take
            victim_sub = next(c.core.sub for c in server.connections if c.core.sub.wildcard)

            def broken(sub):
                if sub is victim_sub:
                    raise RuntimeError("simulated bug while sending to one connection")
                return take(sub)

            monkeypatch.setattr(server.hub, "take", broken)
            with pytest.raises(ConnectionClosed):
                while True:
                    await victim.get_message()
            assert victim.closed.code == 1011
            assert len(await _batches(healthy, 5)) == 5


async def test_a_slow_consumer_past_the_history_gets_conflated_state_not_a_backlog(
    nursery: trio.Nursery,
) -> None:
    # Within the history window a slow reader gets every update late; past it, the latest state.
    # A busy market fills the kernel's socket buffers (megabytes on loopback) in seconds.
    server = Server(ServerConfig(port=0, heartbeat_ms=200, history_s=0.1, activity=10.0))
    await nursery.start(server.run)
    with trio.fail_after(30):
        async with connect(server.url, max_queue=4) as feed:
            await feed.subscribe("*")
            # Do not read: the feed buffers max_queue events, stops reading, and the server
            # (not our memory) absorbs the difference by conflating. Wait until it has.
            while server.hub.gen - next(iter(server.connections)).core.sub.sent_gen < 200:
                await trio.sleep(0.01)  # polling a condition on the server, not a fixed delay
            assert feed.queued <= 4
            assert await feed.subscribe(["AAPL"]) == ["*"]  # requests still work meanwhile
            # What the socket buffers held arrives first; then the catch-up, conflated.
            async for event in feed:
                if isinstance(event, Batch) and event.conflated > 0:
                    assert len(event) <= len(server.hub)  # one tick per symbol at most
                    break
            assert (await feed.stats())["ticks_conflated"] > 0


async def _raw_subscriber(server: Server) -> trio.SocketStream:
    """A bare WebSocket client on '*' that has received data and will never read again."""
    stream = await trio.open_tcp_stream(
        "127.0.0.1", int(server.url.rsplit(":", 1)[1].split("/")[0])
    )
    key = base64.b64encode(os.urandom(16))
    await stream.send_all(
        b"GET /v1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += await stream.receive_some(4096)
    assert buf.startswith(b"HTTP/1.1 101"), buf
    payload, mask = b'{"op":"subscribe","symbols":["*"]}', os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    await stream.send_all(bytes((0x81, 0x80 | len(payload))) + mask + masked)
    got = len(buf)
    while got < 20_000:  # welcome, ack, snapshot, then data: it is streaming
        got += len(await stream.receive_some(65536))
    return stream


async def test_clients_that_reset_mid_stream_are_a_normal_disconnect(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    # A killed client process resets its socket while the server is sending to it: that is the
    # peer going away (1006 in the log), never an internal error (1011 with a traceback).
    with trio.fail_after(20):
        for _ in range(20):
            stream = await _raw_subscriber(server)
            linger = struct.pack("ii", 1, 0)
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            stream.socket.close()  # RST, with unread data in flight
        while server.connections:
            await trio.sleep(0.01)  # polling a condition on the server, not a fixed delay
        async with connect(server.url) as healthy:
            await healthy.subscribe("*")
            assert len(await _batches(healthy, 5)) == 5
    assert server.counters.connections_total == 21
    assert "internal error" not in caplog.text
