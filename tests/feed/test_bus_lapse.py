"""A producer that stalls past its lease while nobody takes it over takes it again with its next
write or renewal, and its stream follows on: gateways see no gap (real redis-server).

A loaded machine can keep a process waiting longer than `LEASE_MS`; with no standby, nothing
else wrote in between, so dropping flushes and resynchronising every gateway would lose updates
for nothing. A lease that another producer took in between still fences the stalled one.
"""

from __future__ import annotations

import numpy as np
import trio
from _redis import RedisServer, require_redis

from tickwire.simulators import Market, TickBatch, Universe

require_redis()

from tickwire.feed.bus import codec as bc  # noqa: E402
from tickwire.feed.bus import keys as bk  # noqa: E402
from tickwire.feed.bus import lease as bl  # noqa: E402
from tickwire.feed.bus import write as bw  # noqa: E402
from tickwire.feed.bus.api import BusProducer, BusReader, MarketUpstream, client_for  # noqa: E402
from tickwire.feed.bus.redis import describe_failure  # noqa: E402

TIMEOUT_S = 30


async def _records(reader: BusReader, n: int) -> TickBatch:
    """Flushes until `n` records came; a gap or a down marker fails."""
    got: list[TickBatch] = []
    while sum(len(b) for b in got) < n:
        item = await reader.next(watched=False)
        assert isinstance(item, np.ndarray), item
        got.append(item)
    return np.concatenate(got)


async def test_a_lease_that_lapsed_unclaimed_is_taken_again_without_a_gap(
    redis: RedisServer,
) -> None:
    market = Market(Universe.synthetic(20, 0), seed=3, start_ns=0)
    producer = BusProducer(redis.url, market.universe, MarketUpstream(market), namespace="ns")
    sent: list[TickBatch] = []
    with trio.fail_after(TIMEOUT_S):
        async with client_for(redis.url) as client, trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            async with BusReader(redis.url, namespace="ns") as reader:
                for t in range(1, 4):
                    sent.append(market.step(t * 10**9))
                    producer.publish(sent[-1])
                await producer.wait_written()
                before = await _records(reader, sum(len(b) for b in sent))
                # What the lease's expiry does when the producer stalls past LEASE_MS.
                assert await client.delete([bk.lease_key("ns")]) == 1
                for t in range(4, 7):
                    sent.append(market.step(t * 10**9))
                    producer.publish(sent[-1])
                await producer.wait_written()
                after = await _records(reader, sum(len(b) for b in sent[3:]))
                assert await client.get(bk.lease_key("ns")) == producer.token
                assert reader.statistics().gaps == 0
                stats = producer.statistics()
                assert stats.flushes_dropped == 0 and stats.role == "active", stats
                assert stats.flushes_written == 6 and stats.takeovers == 0
            nursery.cancel_scope.cancel()
    assert np.concatenate([before, after]).tobytes() == np.concatenate(sent).tobytes()


async def test_a_lapsed_lease_another_producer_took_still_fences_the_stalled_one(
    redis: RedisServer,
) -> None:
    batch = bc.split(np.zeros(1, bc.TICK_DTYPE), 1)
    entries = bc.encode_entries(batch, 1, 1, 5, 0)
    keys, args = bw.write_command("ns", entries, 1, None, b"", 100, b"me", 1000)
    renew = [b"me", b"1000", b"1"]
    async with client_for(redis.url) as client:
        # Lapsed, and another producer took it since (then stopped cleanly or lapsed too).
        await client.set(bl.holder_key("ns"), b"other")
        assert await client.eval(bw.WRITE_SCRIPT, keys=keys, args=args) == b""
        state = bl.parse_state(
            await client.eval(bl.ACQUIRE_SCRIPT, keys=bl.lease_keys("ns"), args=renew)
        )
        assert state.holder == b""
        assert not await client.exists([bk.ticks_key("ns", 0), bk.lease_key("ns")])
        # Released (no holder named): a renewal or a write takes nothing either.
        await client.delete([bl.holder_key("ns")])
        assert await client.eval(bw.WRITE_SCRIPT, keys=keys, args=args) == b""
        # Lapsed and nobody took it since: the write takes it again, as a renewal would.
        await client.set(bl.holder_key("ns"), b"me")
        assert await client.eval(bw.WRITE_SCRIPT, keys=keys, args=args) == 1
        assert await client.get(bk.lease_key("ns")) == b"me"
        assert 0 < await client.pttl(bk.lease_key("ns")) <= 1000
        await client.delete([bk.lease_key("ns")])
        state = bl.parse_state(
            await client.eval(bl.ACQUIRE_SCRIPT, keys=bl.lease_keys("ns"), args=renew)
        )
        assert (state.holder, state.took_over) == (b"me", False)
        assert await client.xlen(bk.ticks_key("ns", 0)) == 1


def test_a_timeout_is_described_in_words() -> None:
    """A write cut off by its timeout logs why ("bus down: ... (timed out: ...)"), not the
    empty text of `trio.TooSlowError`."""
    assert describe_failure(ConnectionError(describe_failure(trio.TooSlowError()))).startswith(
        "timed out: no answer in time"
    )
