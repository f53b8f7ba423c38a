"""BusProducer beside a busy market, against a real redis-server (skips as test_bus.py does).

The writer is a task in the market's loop: a market stepped every millisecond at 5,000 symbols
must not starve it. No timed assertion: every flush written, none dropped.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import trio
import trio.testing
from _redis import RedisServer, require_redis

from tickwire.simulators import TICK_DTYPE, Market, TickBatch, Universe

require_redis()

from tickwire.feed.bus import codec as bc  # noqa: E402
from tickwire.feed.bus import keys as bk  # noqa: E402
from tickwire.feed.bus import write as bw  # noqa: E402
from tickwire.feed.bus.api import BusProducer, BusReader, MarketUpstream, client_for  # noqa: E402

TIMEOUT_S = 30


async def _collect(reader: BusReader, records: int) -> list[TickBatch]:
    """Flushes until `records` records have arrived; a gap or a down marker fails."""
    got: list[TickBatch] = []
    n = 0
    async for item in reader:
        assert isinstance(item, np.ndarray), item
        got.append(item)
        n += len(item)
        if n >= records:
            return got
    raise AssertionError("reader ended")


async def _drive(market: Market, producer: BusProducer, seconds: float) -> list[TickBatch]:
    """The producer's source as a server runs it: step to now every 1 ms, publish."""
    sent: list[TickBatch] = []
    start_ns = market.now_ns
    t0 = next_s = trio.current_time()
    while (now := trio.current_time()) - t0 < seconds:
        batch = market.step(start_ns + round((now - t0) * 1e9), max_chunks=1)
        if len(batch):
            sent.append(batch)  # a view of a chunk the market never writes again
            producer.publish(batch)
        next_s = max(next_s + 0.001, now)
        await trio.sleep_until(next_s)
    return sent


async def test_a_producer_at_5000_symbols_keeps_up_beside_its_market(redis: RedisServer) -> None:
    market = Market(Universe.synthetic(5000, 0), seed=4, start_ns=0)
    market.step(10 * 10**9)  # trades build up over ~10 s: from here, the open's full rate
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            async with BusReader(redis.url) as reader:
                sent = await _drive(market, producer, 2.0)
                await producer.wait_written()
                total = sum(len(b) for b in sent)
                got = await _collect(reader, total)
            nursery.cancel_scope.cancel()
    stats = producer.statistics()
    assert total > 200_000  # ~2 s of 5,000 symbols at the open: ~0.45M updates/s
    assert stats.flushes_dropped == 0, stats
    assert stats.flushes_written == len(sent) and stats.records_written == total
    assert stats.entries_written > 0 and stats.bytes_written == 64 * total
    # every record, in event order; records of equal `ts` on different shards may swap
    both, want = np.concatenate(got), np.concatenate(sent)
    assert np.all(np.diff(both["ts"]) >= 0)
    by_sym = np.lexsort((both["seq"], both["sym"]))
    assert both[by_sym].tobytes() == want[np.lexsort((want["seq"], want["sym"]))].tobytes()
    assert reader.statistics().gaps == 0


async def test_after_its_task_ends_publish_drops_and_counts(redis: RedisServer) -> None:
    market = Market(Universe.synthetic(50, 0), seed=1, start_ns=0)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            producer.publish(market.step(10**9))
            await producer.wait_written()
            nursery.cancel_scope.cancel()  # the writer thread's loop ends with it
    stats = producer.statistics()
    assert (stats.flushes_written, stats.flushes_dropped) == (1, 0)
    producer.publish(market.step(2 * 10**9))  # nobody to write it: never raises, never waits
    await producer.wait_written()
    assert producer.statistics().flushes_dropped == 1


async def test_the_fast_write_path_reloads_its_script_and_reports_errors(
    redis: RedisServer,
) -> None:
    from tickwire.feed.bus.fastwrite import FastWriter

    with trio.fail_after(10):
        fast = await FastWriter.open(redis.url + "?db=3", "return 40 + #KEYS + #ARGV")
        assert fast is not None
        try:
            assert await fast.evalsha(["a"], [b"x"]) == 42  # loaded on first use
            await fast.call(b"SCRIPT", b"FLUSH")  # what a restarted Redis has: no scripts
            assert await fast.evalsha(["a", "b"], [b"x"]) == 43
            await fast.call(b"SET", b"k", b"v")
            with pytest.raises(ConnectionError, match=r"NOSUCHCOMMAND|unknown command"):
                await fast.call(b"NOSUCHCOMMAND")
        finally:
            await fast.aclose()
        async with client_for(redis.url + "?db=3") as client:
            assert await client.get("k") == b"v"  # the db of the URL
    assert await FastWriter.open("rediss://127.0.0.1:1/0", "return 1") is None  # coredis does TLS


async def test_the_writer_runs_in_the_markets_loop_without_a_thread(redis: RedisServer) -> None:
    """A writer thread paid the GIL on each of its socket calls (waiting for the market's
    thread to hand it back): the writes now run as a task in the caller's loop."""
    market = Market(Universe.synthetic(50, 0), seed=2, start_ns=0)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    # By name: an idle thread of trio's cache (from an earlier test) takes a job's name while
    # it runs one, as a writer thread would.
    before = {t.name for t in threading.enumerate()}
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            for k in range(1, 11):
                producer.publish(market.step(k * 10**8))
                await trio.sleep(0)
            await producer.wait_written()
            assert {t.name for t in threading.enumerate()} <= before
            nursery.cancel_scope.cancel()
    assert producer.statistics().flushes_written == 10


async def test_a_flush_without_a_latest_blob_folds_its_own_records(redis: RedisServer) -> None:
    """`latest_for_write` sends no blob for a short flush: the write script then folds the
    records of every shard's entry into the latest-record hash, a symbol's last one winning."""
    batch = np.zeros(7, TICK_DTYPE)
    batch["sym"] = [4, 1, 7, 2, 9, 0, 4]
    batch["seq"] = np.arange(1, 8)
    entries = bc.encode_entries(bc.split(batch, 2), 1, 1, 5, 0)
    keys, args = bw.write_command("ns", entries, 1, None, b"", 100, b"me", 1000)
    async with client_for(redis.url) as client:
        await client.set(bk.lease_key("ns"), b"me")
        assert await client.eval(bw.WRITE_SCRIPT, keys=keys, args=args) == 1
        snap = bc.decode_latest(await client.hgetall(bk.latest_key("ns")), 10)
    assert snap["seq"].tolist() == [6, 2, 4, 0, 7, 0, 0, 3, 0, 5]


class _Steps(trio.abc.Instrument):
    """Counts the scheduler steps of the tasks whose name contains `name`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.name in task.name:
            self.steps += 1


async def test_a_flush_is_sent_in_the_markets_step_without_waking_the_writer(
    redis: RedisServer,
) -> None:
    """Each flush is sent by `publish` itself, pipelined, and its reply read by a later one:
    the writer task wakes only now and then (it used to wake twice per flush, to send and to
    read the reply: most of a producer's fixed cost per flush at 500 symbols)."""
    market = Market(Universe.synthetic(500, 0), seed=5, start_ns=0)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    steps = _Steps("BusProducer.run")
    flushes = 300
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            producer.publish(market.step(10**6))  # opens the fast connection
            await producer.wait_written()
            trio.lowlevel.add_instrument(steps)
            try:
                for k in range(2, flushes + 2):
                    producer.publish(market.step(k * 10**6))
                    await trio.sleep(0.001)
                await producer.wait_written()
            finally:
                trio.lowlevel.remove_instrument(steps)
            nursery.cancel_scope.cancel()
    stats = producer.statistics()
    assert stats.flushes_written == flushes + 1 and stats.flushes_dropped == 0, stats
    assert steps.steps < flushes / 4, steps.steps
    async with client_for(redis.url) as client:  # every flush is on the stream, in order
        entries = await client.xrange(bk.ticks_key("tickwire", 0))
    assert [int(e.field_values[b"l"]) for e in entries] == list(range(1, flushes + 2))


class _Scheduled(trio.abc.Instrument):
    """Counts the wake-ups (reschedules) of the tasks whose name contains `name`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.wakeups = 0

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        if self.name in task.name:
            self.wakeups += 1


async def test_a_flush_into_an_idle_pipeline_wakes_no_writer(redis: RedisServer) -> None:
    """The first flush after a quiet spell (nothing in flight) only brings the writer's wait
    forward, to read its reply if no later flush has by then: no task switch for it. (It used
    to wake the writer at once: a wake-up every ninth flush at 500 symbols.)"""
    market = Market(Universe.synthetic(500, 0), seed=5, start_ns=0)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    woken = _Scheduled("BusProducer.run")
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            for k in (1, 2):
                producer.publish(market.step(k * 10**6))  # the first opens the connection
                await producer.wait_written()
                await trio.testing.wait_all_tasks_blocked()  # the writer waits for work
                trio.lowlevel.add_instrument(woken)
                try:
                    producer.publish(market.step(k * 10**6 + 5 * 10**5))
                finally:
                    trio.lowlevel.remove_instrument(woken)
                assert woken.wakeups == 0
                await producer.wait_written()  # its reply is read all the same
            nursery.cancel_scope.cancel()
    stats = producer.statistics()
    assert stats.flushes_written == 4 and stats.flushes_dropped == 0, stats


async def test_a_steady_market_never_wakes_the_writer(redis: RedisServer) -> None:
    """Flushes every millisecond: `publish` reads the replies (every `READ_EVERY` writes) and
    keeps the writer's wait ending when it would have work, so the writer sleeps through;
    it used to wake every grace period (20 ms) to find its replies read already. A few
    wake-ups are allowed for a loop descheduled past the grace on a busy machine."""
    from tickwire.feed.bus.pipeline import REPLY_GRACE_S

    market = Market(Universe.synthetic(500, 0), seed=6, start_ns=0)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    woken = _Scheduled("BusProducer.run")
    flushes = 200
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            producer.publish(market.step(10**6))  # opens the connection
            await producer.wait_written()
            await trio.testing.wait_all_tasks_blocked()
            trio.lowlevel.add_instrument(woken)
            t0 = trio.current_time()
            try:
                for k in range(2, flushes + 2):
                    producer.publish(market.step(k * 10**6))
                    await trio.sleep(0.001)
            finally:
                trio.lowlevel.remove_instrument(woken)
            spent = trio.current_time() - t0
            await producer.wait_written()
            nursery.cancel_scope.cancel()
    assert spent > 5 * REPLY_GRACE_S  # long enough for a writer woken per grace to show
    assert woken.wakeups <= 3, (woken.wakeups, spent)
    stats = producer.statistics()
    assert stats.flushes_written == flushes + 1 and stats.flushes_dropped == 0, stats


async def test_a_stalled_redis_leaves_flushes_in_the_bounded_outbox(redis: RedisServer) -> None:
    """Redis stops reading (SIGSTOP): the producer sends no more than the socket takes and
    keeps the rest in its outbox, which drops (and counts) beyond its limit, instead of
    queueing every flush in memory until the command timeout; it resumes when Redis does."""
    import os
    import signal

    market = Market(Universe.synthetic(50, 0), seed=7, start_ns=0)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market))
    big = np.zeros(50_000, TICK_DTYPE)  # 3.2 MB a flush: far more than a socket buffer
    big["sym"] = np.arange(len(big)) % 50
    assert redis.proc is not None
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            producer.publish(market.step(10**9))
            await producer.wait_written()
            os.kill(redis.proc.pid, signal.SIGSTOP)
            try:
                for _ in range(15):  # 750,000 records: past the outbox's 500,000
                    producer.publish(big)
                    await trio.sleep(0.01)
                stalled = producer.statistics()
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            await producer.wait_written()
            producer.publish(market.step(2 * 10**9))
            await producer.wait_written()
            nursery.cancel_scope.cancel()
    assert stalled.flushes_dropped >= 1, stalled
    after = producer.statistics()
    assert after.up and after.flushes_written >= 3, after  # the first, one big, the last
