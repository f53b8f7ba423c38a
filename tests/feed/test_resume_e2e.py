"""Every update, epochs and resume end to end: a real server on loopback and our client library."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import trio
from trio.testing import MockClock
from trio_websocket import open_websocket_url

from tickwire.feed import Batch, Gap, connect
from tickwire.feed import protocol as p
from tickwire.feed.server.server import Server, ServerConfig


async def _server(nursery: trio.Nursery, **config: object) -> Server:
    srv = Server(ServerConfig(port=0, heartbeat_ms=200, **config))  # type: ignore[arg-type]
    await nursery.start(srv.run)
    return srv


class Seqs:
    """Every per-symbol seq a client received, to check each update came once, in order."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.jumps = 0
        self.repeats = 0
        self.ticks = 0

    def add(self, batch: Batch) -> None:
        for s, q in zip(batch.ticks["sym"].tolist(), batch.ticks["seq"].tolist(), strict=True):
            if s in self.last:
                self.jumps += q > self.last[s] + 1
                self.repeats += q <= self.last[s]
            self.last[s] = q
        self.ticks += len(batch)


@pytest.mark.parametrize("encoding", ["json", "binary"])
async def test_a_fast_client_on_the_default_market_gets_every_update(
    nursery, encoding, mock_clock: MockClock
):
    # Virtual time (autojump 5 ms; 20 ms steps to keep the jumps few): the client keeps up by
    # construction, as a fast client does, so any conflation is the server's doing and never a
    # loaded machine leaving this process more than --max-lag behind on real time.
    mock_clock.autojump_threshold = 0.005
    srv = await _server(nursery, cadence_ms=20)
    seqs = Seqs()
    with trio.fail_after(30):
        async with connect(srv.url, encoding=encoding) as feed:
            await feed.subscribe("*")
            with trio.move_on_after(3.0):  # read 3 s of the market: the measurement, not a wait
                async for event in feed:
                    if isinstance(event, Batch):
                        assert event.conflated == 0
                        seqs.add(event)
            stats = await feed.stats()
    assert seqs.ticks > 1000
    assert seqs.jumps == seqs.repeats == 0
    assert stats["ticks_conflated"] == 0 and stats["mode"] == "all"
    assert stats["server"]["epoch"] == feed.welcome["epoch"]


async def test_latest_mode_still_conflates(nursery):
    srv = await _server(nursery, activity=20.0)
    with trio.fail_after(30):
        async with connect(srv.url) as feed:
            await feed.subscribe("*", mode="latest")
            await feed.throttle(100)
            conflated = 0
            async for event in feed:
                if isinstance(event, Batch) and event.kind == "ticks":
                    assert len(set(event.symbols)) == len(event)  # one (latest) tick each
                    conflated += event.conflated
                    if conflated:
                        break
            assert (await feed.stats())["ticks_conflated"] > 0


async def _drop_and_collect(
    srv: Server, feed, seqs: Seqs, after: int, keep: frozenset[object] = frozenset()
) -> list[Gap]:
    """Read `*`; drop the connection from the server's side once (all but `keep`); read
    `after` more batches."""
    gaps: list[Gap] = []
    dropped, left = False, after
    async for event in feed:
        if isinstance(event, Gap):
            gaps.append(event)
        elif isinstance(event, Batch):
            seqs.add(event)
            if not dropped and seqs.ticks > 200:
                dropped = True
                for conn in list(srv.connections - keep):
                    conn.close(p.CloseCode.GOING_AWAY, "test drops the connection")
            elif dropped and gaps:
                left -= 1
                if not left:
                    break
    return gaps


async def test_a_dropped_connection_recovers_exactly_the_missed_updates(nursery):
    srv = await _server(nursery)
    seqs = Seqs()
    with trio.fail_after(30):
        # the first retry comes after 1-2 s (jitter): that long is missed, then replayed
        async with connect(srv.url, backoff_initial_s=2.0, encoding="binary") as feed:
            await feed.subscribe("*")
            gaps = await _drop_and_collect(srv, feed, seqs, after=50)
    (gap,) = gaps
    assert gap.reason == "reconnected" and gap.lost == 0 and gap.downtime_s >= 0.9
    assert gap.recovered is not None and gap.recovered > 500  # ~2k updates/s for 1-2 s
    assert seqs.jumps == 0 and seqs.repeats == 0  # every update once, across the drop


async def test_a_catch_up_over_many_messages_is_exact_and_others_keep_streaming(nursery):
    # A take stops at max_take: with 64, the 1-2 s resume is dozens of messages, which the
    # connection's flusher sends one per scheduler turn while a bystander keeps streaming.
    srv = await _server(nursery)
    srv.hub.max_take = 64
    seqs, other = Seqs(), Seqs()

    async def watch(feed) -> None:
        async for event in feed:
            if isinstance(event, Batch):
                other.add(event)

    with trio.fail_after(30):
        async with connect(srv.url, reconnect=False, encoding="binary") as bystander:
            await bystander.subscribe("*")
            keep = frozenset(srv.connections)
            async with trio.open_nursery() as inner:
                inner.start_soon(watch, bystander)
                async with connect(srv.url, backoff_initial_s=2.0, encoding="binary") as feed:
                    await feed.subscribe("*")
                    gaps = await _drop_and_collect(srv, feed, seqs, after=50, keep=keep)
                inner.cancel_scope.cancel()
    (gap,) = gaps
    assert gap.lost == 0 and gap.recovered is not None and gap.recovered > 500
    assert seqs.jumps == 0 and seqs.repeats == 0
    assert other.jumps == 0 and other.repeats == 0 and other.ticks > gap.recovered


async def test_past_the_history_window_a_snapshot_comes_and_the_gap_counts_the_loss(nursery):
    srv = await _server(nursery, history_s=0.05)
    seqs = Seqs()
    with trio.fail_after(30):
        async with connect(srv.url, backoff_initial_s=1.0) as feed:
            await feed.subscribe("*")
            gaps = await _drop_and_collect(srv, feed, seqs, after=5)
    (gap,) = gaps
    assert gap.recovered is None and gap.lost > 0  # exact: per-symbol seq jumps
    assert seqs.jumps > 0 and seqs.repeats == 0


async def test_a_server_restart_is_a_gap_with_unknown_loss(nursery):
    first = await _server(nursery)
    port = int(first.url.rsplit(":", 1)[1].split("/")[0])
    with trio.fail_after(30):
        async with connect(first.url, backoff_initial_s=0.2) as feed:
            await feed.subscribe("*")
            epoch = feed.welcome["epoch"]
            await first.shutdown()
            second = Server(ServerConfig(port=port, heartbeat_ms=200))
            await nursery.start(second.run)
            async for event in feed:
                if isinstance(event, Gap):
                    assert event.lost is None and event.recovered is None
                    break
            assert feed.welcome["epoch"] != epoch


async def test_the_server_refuses_to_resume_another_epoch(nursery):
    # Spoken on a plain WebSocket (our client only ever resumes from its own server's epoch).
    srv = await _server(nursery)
    with trio.fail_after(10):
        async with open_websocket_url(srv.url, subprotocols=[p.SUBPROTOCOL_JSON]) as ws:
            assert orjson.loads(await ws.get_message())["type"] == "welcome"
            resume = {"epoch": "0" * 16, "offset": 0}
            await ws.send_message(
                p.dumps({"op": "subscribe", "symbols": ["AAPL"], "id": 1, "resume": resume})
            )
            reply = orjson.loads(await ws.get_message())
            assert reply["type"] == "ack" and reply["id"] == 1 and reply["recovered"] is False
            while (msg := orjson.loads(await ws.get_message()))["type"] == "heartbeat":
                pass
            assert msg["type"] == "snapshot" and [t["symbol"] for t in msg["ticks"]] == ["AAPL"]


async def test_binary_frames_carry_offsets_once_the_client_asks(nursery):
    srv = await _server(nursery)
    with trio.fail_after(10):
        async with connect(srv.url, encoding="binary") as feed:
            await feed.subscribe("*")
            async for event in feed:
                if isinstance(event, Batch) and event.kind == "ticks":
                    break
            assert feed.offset is not None and feed.offset > 0
            assert np.all(event.ticks["bid"] < event.ticks["ask"])
