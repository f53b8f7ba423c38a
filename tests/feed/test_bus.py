"""The Redis bus against a real redis-server: each test starts its own, on a unix socket or a port.

Without redis-server (or coredis) these skip with the reason; under CI=true they fail instead, so
CI cannot go green without running them. No autojump_clock: Redis runs on real time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import trio
from _redis import RedisServer, require_redis

from tickwire.simulators import Market, Universe

require_redis()

from tickwire.feed.bus.api import (  # noqa: E402
    BusDown,
    BusGap,
    BusProducer,
    BusReader,
    MarketUpstream,
)
from tickwire.feed.bus.redis import client_for  # noqa: E402

TIMEOUT_S = 20


def _market(n: int = 300, seed: int = 1) -> Market:
    return Market(Universe.synthetic(n, 0), seed=seed, start_ns=1_700_000_000_000_000_000)


async def _collect(reader: BusReader, records: int) -> list[object]:
    """Items until `records` records have arrived."""
    items: list[object] = []
    got = 0
    async for item in reader:
        items.append(item)
        if isinstance(item, np.ndarray):
            got += len(item)
            if got >= records:
                return items
    raise AssertionError("reader ended")


async def _until(condition: Callable[[int], bool], url: str, field: str = "keyspace_misses") -> int:
    """Redis's INFO `field` once `condition(value)` holds (polled; the caller bounds it)."""
    section = "clients" if field == "blocked_clients" else "stats"
    async with client_for(url) as client:
        while True:
            value = int((await client.info(section))[field])
            if condition(value):
                return value
            await trio.sleep(0.005)


def _records(items: list[object]) -> bytes:
    return b"".join(i.tobytes() for i in items if isinstance(i, np.ndarray))


async def test_round_trip_exact_bytes_in_order_to_two_readers(redis_tcp: RedisServer) -> None:
    market = _market()
    producer = BusProducer(redis_tcp.url, market.universe, MarketUpstream(market), shards=4)
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            async with (
                BusReader(redis_tcp.url) as a,
                BusReader(redis_tcp.url) as b,
            ):
                assert a.universe is not None and a.universe.symbols == market.universe.symbols
                assert a.epoch == b.epoch == producer.epoch
                sent = []
                for k in range(1, 201):  # 200 flushes of 5 ms
                    batch = market.step(market.start_ns + k * 5_000_000)
                    sent.append(batch.copy())
                    producer.publish(batch)
                    if k % 20 == 0:
                        await producer.wait_written()
                total = sum(len(s) for s in sent)
                want = b"".join(s.tobytes() for s in sent)
                got_a = await _collect(a, total)
                got_b = await _collect(b, total)
            nursery.cancel_scope.cancel()
    assert total > 1000
    assert _records(got_a) == want  # every record, every byte, in event order
    assert _records(got_b) == want
    stats = producer.statistics()
    assert stats.up and stats.flushes_dropped == 0 and stats.records_written == total
    assert stats.entries_written <= 4 * stats.flushes_written  # one entry per shard per write
    assert a.statistics().up and a.statistics().gaps == 0


async def test_namespaces_are_isolated(redis: RedisServer) -> None:
    m1, m2 = _market(50, seed=1), _market(80, seed=2)
    p1 = BusProducer(redis.url, m1.universe, MarketUpstream(m1), namespace="one")
    p2 = BusProducer(redis.url, m2.universe, MarketUpstream(m2), namespace="two", shards=2)
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(p1.run)
            await nursery.start(p2.run)
            async with (
                BusReader(redis.url, namespace="one") as r1,
                BusReader(redis.url, namespace="two") as r2,
            ):
                assert r1.universe is not None and len(r1.universe) == 50
                assert r2.universe is not None and len(r2.universe) == 80
                assert r2.shards == 2
                b1, b2 = m1.step(m1.start_ns + 10**9), m2.step(m2.start_ns + 10**9)
                p1.publish(b1)
                p2.publish(b2)
                got1 = await _collect(r1, len(b1))
                got2 = await _collect(r2, len(b2))
            nursery.cancel_scope.cancel()
    assert _records(got1) == b1.tobytes()
    assert _records(got2) == b2.tobytes()


async def test_a_trimmed_cursor_is_a_gap_with_a_snapshot(redis: RedisServer) -> None:
    market = _market(100)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market), shards=1, maxlen=50)
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            async with BusReader(redis.url) as reader:
                for k in range(1, 601):  # 600 entries, MAXLEN ~50: the reader's cursor goes
                    producer.publish(market.step(market.start_ns + k * 2_000_000))
                    await producer.wait_written()
                first = await reader.__anext__()
                more = market.step(market.start_ns + 1_300_000_000)  # live again after the gap
                producer.publish(more)
                after = await _collect(reader, len(more))
            nursery.cancel_scope.cancel()
    assert isinstance(first, BusGap), first
    assert reader.statistics().gaps == 1
    snap = market.snapshot()
    # the gap's snapshot plus what follows is the market as it stands: nothing silently lost
    latest = first.snapshot.copy()
    for batch in after:
        assert isinstance(batch, np.ndarray)
        latest[batch["sym"]] = batch
    seen = latest["seq"] > 0
    assert np.array_equal(latest[seen], snap[seen])


async def test_redis_killed_and_restarted_mid_stream(redis: RedisServer) -> None:
    market = _market(200)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market), shards=3)
    items: list[object] = []
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            stop = trio.Event()

            async def run_market() -> None:  # the producer's source: steps on, whatever Redis does
                k = 0
                while not stop.is_set():
                    k += 1
                    producer.publish(market.step(market.start_ns + k * 2_000_000))
                    await trio.sleep(0.002)

            nursery.start_soon(run_market)
            async with BusReader(redis.url) as reader:
                async for item in reader:
                    items.append(item)
                    kinds = [type(i).__name__ for i in items]
                    if len(items) == 20:
                        redis.kill()  # SIGKILL
                    if isinstance(item, BusDown):
                        assert not reader.statistics().up
                        redis.start()  # same socket, empty: the streams are gone
                    if "BusGap" in kinds and kinds[-1] == "ndarray" and kinds.count("ndarray") > 40:
                        break
            stop.set()
            nursery.cancel_scope.cancel()
    kinds = [type(i).__name__ for i in items]
    down, gap = kinds.index("BusDown"), kinds.index("BusGap")
    assert 20 <= down < gap < len(kinds) - 1, kinds
    assert producer.statistics().up  # it survived, reconnected and writes again
    assert producer.statistics().flushes_dropped > 0
    # after the gap: the snapshot, then per-symbol seq +1 on every update (nothing lost)
    g = items[gap]
    assert isinstance(g, BusGap)
    seq = g.snapshot["seq"].astype(np.int64)
    for batch in items[gap + 1 :]:
        assert isinstance(batch, np.ndarray), [k for k in kinds if k != "ndarray"]
        for rec in batch:
            s = int(rec["sym"])
            if seq[s]:
                assert int(rec["seq"]) == seq[s] + 1, (s, int(rec["seq"]), seq[s])
            seq[s] = int(rec["seq"])


async def test_a_reader_waits_for_its_producer(redis: RedisServer) -> None:
    market = _market(20)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            opened = trio.Event()

            async def open_reader() -> None:
                async with BusReader(redis.url) as reader:
                    assert reader.epoch == producer.epoch
                    opened.set()

            nursery.start_soon(open_reader)
            # Redis counts the reader's looks for a producer that is not there: each look is one
            # transaction, so its misses land at once. Once a second look has landed, the first
            # one did not open the reader (an event, not a sleep, says the reader is waiting).
            first = await _until(lambda m: m > 0, redis.url)
            await _until(lambda m: m >= 2 * first or opened.is_set(), redis.url)
            assert not opened.is_set()
            await nursery.start(producer.run)
            await opened.wait()
            nursery.cancel_scope.cancel()


def test_bad_bus_urls_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="--bus must be redis://HOST:PORT/DB or unix:///PATH"):
        BusReader("http://127.0.0.1:6379")


async def test_a_read_cut_off_by_its_caller_loses_nothing(redis: RedisServer) -> None:
    """A caller's timeout around `__anext__` cancels a blocked XREAD mid-call; the next read
    starts on a fresh connection from the same cursors: every record, no gap."""
    market = _market(20)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            async with BusReader(redis.url) as reader:

                async def cut_off_once_blocked(scope: trio.CancelScope) -> None:
                    await _until(lambda n: n >= 1, redis.url, "blocked_clients")
                    scope.cancel()  # Redis holds the XREAD: the cut falls mid-call

                for _ in range(3):
                    with trio.CancelScope() as scope:
                        nursery.start_soon(cut_off_once_blocked, scope)
                        item = await reader.__anext__()
                        raise AssertionError(f"nothing was published yet: {item}")
                    assert scope.cancelled_caught
                    # The cut read's connection is dropped: Redis lets go of it before the next.
                    await _until(lambda n: n == 0, redis.url, "blocked_clients")
                sent = []
                for k in range(1, 4):
                    batch = market.step(market.start_ns + k * 50_000_000)
                    sent.append(batch.copy())
                    producer.publish(batch)
                got = await _collect(reader, sum(len(b) for b in sent))
            assert not [i for i in got if not isinstance(i, np.ndarray)], got
            assert _records(got) == b"".join(b.tobytes() for b in sent)
            nursery.cancel_scope.cancel()
