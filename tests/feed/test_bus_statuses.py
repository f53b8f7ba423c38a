"""A scenario's halts and resumptions cross the bus: a client on a gateway gets the statuses a
client of the producer's own listener gets, in the same order and in order with the ticks.

Real redis-server and real sockets; the producer, its listener and the gateways run in this
test's trio loop (the compositions `tickwire serve --bus` runs), on real time: the scenario
halts within the first seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from _redis import RedisServer, require_redis
from _support import serve_config

require_redis()

from tickwire.feed import Batch, TradingStatus, connect  # noqa: E402
from tickwire.feed.bus import codec as bc  # noqa: E402
from tickwire.feed.bus import keys as bk  # noqa: E402
from tickwire.feed.bus.api import BusReader, client_for  # noqa: E402
from tickwire.feed.server.gateway import gateway_server, producer_server  # noqa: E402

TIMEOUT_S = 60
NS = "scen"
# AAPL halted from 0.6 s to 5.1 s (long, so that the late gateway starts within it even on a
# loaded machine), MSFT from 0.9 s to 1.3 s (event time from the producer's start).
SCENARIO = """
[[event]]
kind = "halt"
at = "0.6s"
duration = "4.5s"
symbol = "AAPL"

[[event]]
kind = "halt"
at = "0.9s"
duration = "0.4s"
symbol = "MSFT"
"""
SYMBOLS = ["AAPL", "MSFT", "SPY"]


async def _events(url: str, until_ns: int, out: list[object], *, snapshot: bool = False) -> None:
    """Batches and statuses of `SYMBOLS` until a live batch (not the snapshot: the statuses
    that stand follow it) reaches event time `until_ns`."""
    async with connect(url, encoding="binary") as feed:
        await feed.subscribe(SYMBOLS, snapshot=snapshot)
        async for ev in feed:
            if isinstance(ev, Batch | TradingStatus):
                out.append(ev)
            live = isinstance(ev, Batch) and ev.kind != "snapshot" and len(ev.ticks)
            if live and ev.ticks["ts"][-1] >= until_ns:
                return


def _statuses(events: list[object]) -> list[tuple[str, str, str, int]]:
    return [(e.symbol, e.status, e.reason, e.ts) for e in events if isinstance(e, TradingStatus)]


def _no_ticks_while_halted(events: list[object], symbol_id: int, name: str) -> None:
    halted = False
    for ev in events:
        if isinstance(ev, TradingStatus) and ev.symbol == name:
            halted = ev.status == "halted"
        elif isinstance(ev, Batch) and halted:
            assert not (ev.ticks["sym"] == symbol_id).any(), f"{name} ticks while halted"


async def test_statuses_cross_the_bus_in_order_and_a_late_gateway_learns_who_is_halted(
    redis: RedisServer, tmp_path: Path
) -> None:
    path = tmp_path / "halts.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    server, producer = producer_server(
        serve_config("--scenario", str(path), "--seed", "3"), None, redis.url, NS
    )
    start_ns = server.source.start_ns  # type: ignore[attr-defined]
    own: list[object] = []
    via_bus: list[object] = []
    late: list[object] = []
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            await nursery.start(server.run)
            async with BusReader(redis.url, namespace=NS) as reader, trio.open_nursery() as gws:
                assert reader.statuses  # the meta says the market plays a scenario
                gateway = gateway_server(serve_config(), reader, "gw-1")
                await gws.start(gateway.run)
                assert server.now_ns() < start_ns + 500_000_000, "started too late to test"
                until = start_ns + 5_400_000_000
                async with trio.open_nursery() as clients:
                    clients.start_soon(_events, server.url, until, own)
                    clients.start_soon(_events, gateway.url, until, via_bus)
                    # A gateway that starts while AAPL is halted (and MSFT no longer is).
                    while server.now_ns() < start_ns + 1_500_000_000:
                        await trio.sleep(0.01)  # the event time to start at: no event to wait on
                    async with BusReader(redis.url, namespace=NS) as second:
                        gw2 = gateway_server(serve_config(), second, "gw-2")
                        async with trio.open_nursery() as gw2s:
                            await gw2s.start(gw2.run)
                            await _events(gw2.url, start_ns + 1_700_000_000, late, snapshot=True)
                            gw2s.cancel_scope.cancel()
                gws.cancel_scope.cancel()
            async with client_for(redis.url) as client:
                halted = await client.hgetall(bk.halted_key(NS))
            nursery.cancel_scope.cancel()
    expected = [
        ("AAPL", "halted", "scenario", start_ns + 600_000_000),
        ("MSFT", "halted", "scenario", start_ns + 900_000_000),
        ("MSFT", "trading", "scenario", start_ns + 1_300_000_000),
        ("AAPL", "trading", "scenario", start_ns + 5_100_000_000),
    ]
    assert _statuses(own) == expected  # the producer's own clients: the in-process server
    assert _statuses(via_bus) == expected
    for events in (own, via_bus):
        _no_ticks_while_halted(events, 0, "AAPL")
        _no_ticks_while_halted(events, 1, "MSFT")
    # Ticks and statuses interleave the same way: the same ticks before each status.
    for events in (own, via_bus):
        assert sum(isinstance(e, Batch) for e in events) > 20
    at_own = [_ticks_before(own, i) for i in range(4)]
    at_bus = [_ticks_before(via_bus, i) for i in range(4)]
    assert at_own == at_bus
    # The late gateway's client: its snapshot, then AAPL's halt as it stands.
    assert isinstance(late[0], Batch) and late[0].kind == "snapshot"
    assert _statuses(late)[0] == expected[0]
    assert not halted  # AAPL resumed: nobody is halted at the end


def _ticks_before(events: list[object], k: int) -> bytes:
    """The AAPL and MSFT ticks of the batches between the k-1th and kth status (by ts)."""
    idx = [i for i, e in enumerate(events) if isinstance(e, TradingStatus)]
    lo = idx[k - 1] if k else 0
    hi = idx[k]
    ticks = [e.ticks for e in events[lo:hi] if isinstance(e, Batch) and e.kind == "ticks"]
    both = np.concatenate(ticks) if ticks else np.empty(0)
    if not len(both):
        return b""
    # The clients start at different moments: compare what both certainly saw (the last 5).
    mine = both[both["sym"] < 2]
    return bytes(mine[-5:].tobytes())


@pytest.mark.parametrize("status", [1, 0])
def test_a_status_blob_round_trips(status: int) -> None:
    from tickwire.simulators.scenario import STATUS_DTYPE

    rec = np.zeros(2, STATUS_DTYPE)
    rec["sym"], rec["status"], rec["ts"], rec["reason"] = [3, 9], status, [5, 6], [1, 2]
    at, got = bc.decode_statuses(bc.encode_statuses([(4, rec[:1]), (7, rec[1:])]))
    assert at.tolist() == [4, 7] and got.tobytes() == rec.tobytes()
    assert bc.encode_statuses([]) == b""
    with pytest.raises(bc.BusFormatError, match="multiple of 24"):
        bc.decode_statuses(b"x" * 25)


@pytest.mark.parametrize("shards", [1, 2])
def test_statuses_in_a_coalesced_write_come_out_where_they_were_published(shards: int) -> None:
    """A writer that fell behind sends flushes and status changes in one write: the gateway's
    reader yields the records before each change, the change, then the rest, as published."""
    from tickwire.feed.bus import write as bw
    from tickwire.feed.bus.outbox import Outbox
    from tickwire.feed.bus.reader import BusStatuses, flush_items
    from tickwire.feed.bus.reassemble import Reassembler
    from tickwire.simulators import Market, Universe
    from tickwire.simulators.scenario import STATUS_DTYPE

    market = Market(Universe.synthetic(20, 0), seed=1, start_ns=0)
    b1, b2 = market.step(10**8), market.step(2 * 10**8)
    halt, resume = np.zeros(1, STATUS_DTYPE), np.zeros(1, STATUS_DTYPE)
    halt["sym"], halt["status"], resume["sym"] = 3, 1, 4
    outbox = Outbox(10**6)
    outbox.accept()
    outbox.put(b1, 0)
    outbox.put_statuses(halt)
    outbox.put(b2, len(b1))
    outbox.put_statuses(resume)  # after everything: at the end of the write
    taken = outbox.take()
    assert taken is not None and taken.flushes == 2
    packer_args = dict(namespace="ns", shards=shards, epoch=7, maxlen=9, token=b"t", lease_ms=1)
    _, args, _ = bw.flush_command(taken, sent_ns=0, **packer_args)  # type: ignore[arg-type]
    statuses = args[12]
    parts = bc.split(taken.batch, shards)
    asm = Reassembler(7, next_flush=1)
    released = []
    for shard, fields in bc.encode_entries(parts, 1, 2, 7, 0, 0, statuses):
        released += asm.feed(bc.decode_entry(shard, fields))
    assert len(released) == 1 and released[0] is not None
    items = flush_items(released[0], asm.offsets[0], asm.statuses[0])
    kinds = ["s" if isinstance(i, BusStatuses) else len(i) for i, _ in items]
    assert kinds == [len(b1), "s", len(b2), "s"]
    assert [off for _, off in items] == [0, None, len(b1), None]
    got = [i.records.tobytes() for i, _ in items if isinstance(i, BusStatuses)]
    assert got == [halt.tobytes(), resume.tobytes()]


def test_a_status_change_alone_is_a_write_of_its_own() -> None:
    """Status changes with no record pending (the flush before them was written) are a flush
    of their own: one entry of shard 0 without records."""
    from tickwire.feed.bus.outbox import Outbox
    from tickwire.simulators.scenario import STATUS_DTYPE

    outbox = Outbox(10**6)
    outbox.accept()
    halt = np.zeros(1, STATUS_DTYPE)
    assert outbox.put_statuses(halt)
    taken = outbox.take()
    assert taken is not None and (taken.first, taken.last, len(taken.batch)) == (1, 1, 0)
    entries = bc.encode_entries([], 1, 1, 7, 0, 5, bc.encode_statuses(taken.statuses))
    assert [(shard, f[b"m"], f[b"r"]) for shard, f in entries] == [(0, b"1", b"")]
    outbox.stop()
    assert not outbox.put_statuses(halt) and outbox.dropped == 1  # no writer: dropped, counted


LATER = """
[[event]]
kind = "halt"
at = "4s"
duration = "1s"
symbol = "AAPL"
"""


@pytest.mark.slow  # three real processes and a halt 4 s into the producer's run: ~10 s
async def test_tickwire_serve_gateways_send_the_producers_statuses(
    redis: RedisServer, procs: Any, tmp_path: Path
) -> None:
    """What an operator runs: `tickwire serve --bus --role producer --scenario`, a gateway,
    and clients on both; the gateway's client gets the halt and the resumption the producer's
    own client gets."""
    path = tmp_path / "later.toml"
    path.write_text(LATER, encoding="utf-8")
    bus = ("--bus", redis.url, "--bus-namespace", NS)
    producer = procs("producer", *bus, "--role", "producer", "--scenario", str(path), "--port", "0")
    gateway = procs("gateway", *bus, "--role", "gateway", "--port", "0")
    own: list[object] = []
    via_bus: list[object] = []
    with trio.fail_after(TIMEOUT_S):
        await producer.ready()
        await gateway.ready()

        async def until_resumed(url: str, out: list[object]) -> None:
            async with connect(url, encoding="binary") as feed:
                await feed.subscribe(SYMBOLS, snapshot=False)
                async for ev in feed:
                    if isinstance(ev, Batch | TradingStatus):
                        out.append(ev)
                    if isinstance(ev, TradingStatus) and ev.status == "trading":
                        return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(until_resumed, producer.url, own)
            nursery.start_soon(until_resumed, gateway.url, via_bus)
    statuses = _statuses(own)
    assert [(s[0], s[1]) for s in statuses] == [("AAPL", "halted"), ("AAPL", "trading")]
    assert statuses[1][3] - statuses[0][3] == 1_000_000_000
    assert _statuses(via_bus) == statuses
    _no_ticks_while_halted(via_bus, 0, "AAPL")
    assert producer.stop() == 0 and gateway.stop() == 0


async def test_after_a_gap_a_halt_the_new_producer_does_not_have_ends(
    redis: RedisServer, tmp_path: Path
) -> None:
    """A new producer (a new epoch) takes over while AAPL is halted by the old one's scenario
    and plays none: the gateway's clients get the gap, the snapshot, then AAPL trading again
    (the statuses in between are lost; the halted hash says who is halted now)."""
    from tickwire.feed import Gap

    path = tmp_path / "long.toml"
    path.write_text(
        '[[event]]\nkind = "halt"\nat = "0.3s"\nduration = "60s"\nsymbol = "AAPL"\n',
        encoding="utf-8",
    )
    first, _ = producer_server(serve_config("--scenario", str(path)), None, redis.url, NS)
    second, _ = producer_server(serve_config(), None, redis.url, NS)
    events: list[object] = []

    async def run(server: Any, scope: trio.CancelScope, *, task_status: Any) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(server.sinks[1].producer.run)
                await nursery.start(server.run_source)
                task_status.started()

    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as outer:
            first_scope = trio.CancelScope()
            await outer.start(run, first, first_scope)
            async with BusReader(redis.url, namespace=NS) as reader, trio.open_nursery() as gws:
                gateway = gateway_server(serve_config(), reader, "gw")
                await gws.start(gateway.run)
                async with connect(gateway.url, encoding="binary") as feed:
                    await feed.subscribe(SYMBOLS, snapshot=False)
                    async for ev in feed:
                        if isinstance(ev, Batch | TradingStatus | Gap):
                            events.append(ev)
                        if isinstance(ev, TradingStatus) and ev.status == "halted":
                            first_scope.cancel()  # a clean stop: it releases the lease
                            await outer.start(run, second, trio.CancelScope())
                        if isinstance(ev, TradingStatus) and ev.status == "trading":
                            break
                gws.cancel_scope.cancel()
            outer.cancel_scope.cancel()
    kinds = [
        type(e).__name__ if not isinstance(e, Batch) else e.kind
        for e in events
        if not (isinstance(e, Batch) and e.kind == "ticks")
    ]
    assert kinds == ["TradingStatus", "Gap", "snapshot", "TradingStatus"], kinds
    halt, resume = _statuses(events)
    assert (halt[0], halt[1], resume[0], resume[1]) == ("AAPL", "halted", "AAPL", "trading")
    assert resume[3] > halt[3]
    assert sum(isinstance(e, Gap) for e in events) == 1
