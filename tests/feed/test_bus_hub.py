"""A gateway's side of the bus without Redis: the hub at the producer's offsets, its resync after a
gap, the codec's offsets, and a server fed by an upstream, seen by the client library."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import trio

from tickwire.feed import Batch, Gap, connect
from tickwire.feed.bus import codec as bc
from tickwire.feed.bus.reassemble import Reassembler
from tickwire.feed.hub.hub import Hub
from tickwire.feed.server.roles import Feed, Opening
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Market, TickBatch, Universe

START_NS = 1_700_000_000_000_000_000


def _market(n: int = 40, seed: int = 3) -> Market:
    return Market(Universe.synthetic(n, 0), seed=seed, start_ns=START_NS)


def _steps(m: Market, k: int, every_ms: int = 20) -> list[TickBatch]:
    return [m.step(START_NS + i * every_ms * 1_000_000).copy() for i in range(1, k + 1)]


def test_entries_carry_the_producers_offset_and_flushes_come_out_with_it() -> None:
    batches = _steps(_market(), 6)
    asm = Reassembler(7, next_flush=1)
    offset, got = 5_000, []
    for k, b in enumerate(batches, 1):
        parts = bc.split(b, 3)
        for shard, fields in bc.encode_entries(parts, k, k, 7, 0, offset):
            out = asm.feed(bc.decode_entry(shard, fields))
            got += [(len(x), o) for x, o in zip(out, asm.offsets, strict=True) if x is not None]
        offset += len(b)
    starts = np.cumsum([0] + [len(b) for b in batches[:-1]]) + 5_000
    assert got == [(len(b), int(s)) for b, s in zip(batches, starts, strict=True)]
    no_offset = bc.encode_entries(bc.split(batches[0], 1), 1, 1, 7, 0)[0][1]
    assert bc.decode_entry(0, no_offset).offset is None  # an older producer's entries


def test_two_hubs_at_the_producers_offsets_resume_each_others_clients() -> None:
    m = _market()
    batches = _steps(m, 20)
    u = m.universe
    a = Hub(u, _market().snapshot(), epoch="e1")
    b = Hub(u, _market().snapshot(), epoch="e1")
    offsets = np.cumsum([0] + [len(x) for x in batches]) + 777
    sub = a.attach(lambda: None)
    a.set_subscription(sub, True, np.empty(0, np.intp))
    for i, batch in enumerate(batches):
        a.publish(batch, on_grid=True, offset=int(offsets[i]))
        b.publish(batch, on_grid=True, offset=int(offsets[i]))
        if i == 9:
            taken = a.take(sub)
            assert taken is not None and taken.offset == offsets[10]
    # the client moves from hub a to hub b with a's offset: b recovers exactly the rest
    moved = b.attach(lambda: None)
    b.set_subscription(moved, True, np.empty(0, np.intp))
    missed = b.resume(moved, "e1", int(offsets[10]))
    assert missed == sum(len(x) for x in batches[10:])
    rest = b.take(moved)
    assert rest is not None and rest.records.tobytes() == np.concatenate(batches[10:]).tobytes()
    assert b.resume(moved, "another epoch", int(offsets[10])) is None


def test_a_resync_gives_every_subscriber_a_gap_snapshot_then_every_update() -> None:
    m = _market()
    u = m.universe
    hub = Hub(u, m.snapshot(), epoch="old")
    woken: list[str] = []
    wild = hub.attach(lambda: woken.append("wild"))
    hub.set_subscription(wild, True, np.empty(0, np.intp))
    some = hub.attach(lambda: woken.append("some"))
    hub.set_subscription(some, False, np.array([1, 2]))
    idle = hub.attach(lambda: woken.append("idle"))
    for batch in _steps(m, 3):
        hub.publish(batch, on_grid=True, offset=hub.history.head)
    hub.take(wild), hub.take(some)
    woken.clear()
    later = _market(seed=9)  # another producer: another epoch, seqs from its own start
    later.step(START_NS + 10**9)
    hub.resync(later.snapshot(), epoch="new", offset=123_456)
    assert sorted(woken) == ["some", "wild"] and hub.epoch == "new"
    gap = hub.take(wild)
    assert gap is not None and gap.gap and len(gap.records) == len(u)
    assert np.array_equal(gap.records["seq"], later.snapshot()["seq"])
    gap_some = hub.take(some)
    assert gap_some is not None and gap_some.gap and gap_some.records["sym"].tolist() == [1, 2]
    assert hub.take(idle) is None and hub.take(wild) is None
    nxt = later.step(START_NS + 2 * 10**9)
    hub.publish(nxt, on_grid=True, offset=123_456)
    takes = []
    while (again := hub.take(wild)) is not None:  # at most max_take records a message
        takes.append(again)
    assert takes and not any(t.gap for t in takes)
    got = np.concatenate([t.records for t in takes])
    assert got.tobytes() == nxt.tobytes()  # every update, from the new offset
    assert takes[-1].offset == 123_456 + len(nxt)


class _Upstream:
    """A source fed from this test: flushes and a gap, as a bus gateway's reader would."""

    paced = False
    finished = False

    def __init__(self, market: Market) -> None:
        self.market = market
        self.send, self.recv = trio.open_memory_channel[Any](100)
        self.up = True

    def open(self) -> Opening:
        snapshot = self.market.snapshot()
        return Opening(
            self.market.universe,
            snapshot,
            time.time_ns(),
            "0123456789abcdef",
            1_000,
            continued=True,
        )

    def refresh(self) -> None:
        pass

    async def run(self, feed: Feed, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        async for kind, value, offset in self.recv:
            if kind == "gap":
                await feed.resync(value, "0123456789abcdef", offset)
            else:
                await feed.push(value, offset)

    def statistics(self) -> dict[str, Any]:
        return {"gateway": "test:1", "bus": "up" if self.up else "down", "bus_lag_ms": 1.5}

    def not_ready(self) -> str | None:
        return None if self.up else "the bus is down (test)"


async def test_a_server_fed_by_an_upstream_reports_the_source_gap_to_the_client() -> None:
    m = _market()
    up = _Upstream(m)
    server = Server(ServerConfig(port=0, heartbeat_ms=100), source=up)
    events: list[object] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(server.run)
            async with connect(url, encoding="binary") as feed:
                assert feed.welcome["epoch"] == "0123456789abcdef"
                await feed.subscribe(["*"])
                offset = 1_000
                for k in range(1, 6):
                    batch = m.step(START_NS + k * 10_000_000).copy()
                    await up.send.send(("ticks", batch, offset))
                    offset += len(batch)
                for _ in range(20):  # the upstream lost flushes: the market moved on
                    m.step(START_NS + (6 + _) * 10_000_000)
                await up.send.send(("gap", m.snapshot().copy(), 50_000))
                after = m.step(START_NS + 30 * 10_000_000).copy()
                await up.send.send(("ticks", after, 50_000))
                async for event in feed:
                    events.append(event)
                    if isinstance(event, Batch) and event.ticks["seq"].max() >= after["seq"].max():
                        break
                stats = await feed.stats()
                up.up = False
                status, _, body = server.readiness()
            nursery.cancel_scope.cancel()
    gaps = [e for e in events if isinstance(e, Gap)]
    assert len(gaps) == 1 and gaps[0].reason == "source" and gaps[0].lost and gaps[0].lost > 0
    i = events.index(gaps[0])
    snap = events[i + 1]
    assert isinstance(snap, Batch) and snap.kind == "snapshot"  # what changed (repeats dropped)
    held: dict[int, int] = {}
    for e in events[:i]:
        if isinstance(e, Batch):
            held.update(zip(e.ticks["sym"].tolist(), e.ticks["seq"].tolist(), strict=True))
    jumps = sum(
        q - held[s] - 1
        for s, q in zip(snap.ticks["sym"].tolist(), snap.ticks["seq"].tolist(), strict=True)
        if s in held
    )
    assert gaps[0].lost == jumps > 0  # exactly the updates the snapshot skipped
    assert stats["offset"] == 50_000 + len(after)  # the producer's numbering, not ours
    assert stats["server"]["gateway"] == "test:1" and stats["server"]["epoch"] == "0123456789abcdef"
    assert status == 503 and b"the bus is down" in body
