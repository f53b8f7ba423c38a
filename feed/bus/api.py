"""The bus: one producer's flushes to any number of gateways, through Redis Streams.

`BusProducer` runs beside the market, its `Upstream` (a role object: the latest records for a
new lease's snapshot, a wake-up when a gateway starts watching; `MarketUpstream` for a bare
market, the server's `BusSink` in `tickwire serve`): `publish(batch)` never waits (like
`Hub.publish`) and sends each flush, pipelined (`pipeline.py`), as one entry per shard, the
latest record per symbol and the flush numbers in one Lua script (`write.WRITE_SCRIPT`): one
atomic command, so a reader sees a flush whole or not at all. While Redis is down it keeps
nothing: flushes are dropped and counted, it reconnects with backoff, logs once, and
rewrites the meta key and the full snapshot when Redis is back.

One producer per namespace writes: it holds a lease in Redis (`lease.py`) that fences every
write; others stand by and take over when it dies or stalls. While no gateway has subscribers
(`{ns}:watched`), the producer's market steps rarely, as an idle server's does.
The per-flush write and a gateway's stream reads go over a plain connection packed and parsed
by hiredis (`fastwrite.py`); coredis carries the rest.

`BusReader` is a gateway's source: `async with BusReader(url, ns) as reader` waits for the
producer's meta (universe, epoch), then `async for item in reader` yields `TickBatch` flushes in
event order, `BusStatuses` where a producer's market playing a scenario halted or resumed
symbols, `BusScenario` where a scenario started or ended, `BusLevels` where a market with books
changed levels (before the ticks after them) while the reader mirrors books (`set_mirror`: the
producer writes level updates only while some gateway does, `{ns}:bookswatched`), with
`BusLevelsLost` where it left some out, `BusBooks` (every book whole) after a gateway
asked for them (`want_books`), `BusDown` once when Redis goes away, and `BusGap` (with a fresh
snapshot and the symbols halted then) whenever records were lost: a trimmed cursor, a changed
epoch, a Redis restart.
Each reader keeps its own cursor per shard (XREAD BLOCK, no consumer groups: groups split work,
they do not fan out).

The wire format (`codec.py`), the flush's write (`write.py`), the producer's pending flushes
(`outbox.py`) and reassembly (`reassemble.py`) are sans-IO. Needs `pip install 'tickwire[redis]'`
(coredis, native under trio through anyio). Never imported by the single-process server.
"""

from __future__ import annotations

from tickwire.feed.bus.admin import AdminForwarder, AdminRequest, take_requests
from tickwire.feed.bus.producer import (
    BusProducer,
    BusProducerStatistics,
    MarketUpstream,
    Upstream,
)
from tickwire.feed.bus.reader import (
    BusBooks,
    BusDown,
    BusGap,
    BusItem,
    BusLevels,
    BusLevelsLost,
    BusReader,
    BusReaderStatistics,
    BusScenario,
    BusStatuses,
)
from tickwire.feed.bus.redis import (
    BACKOFF_S,
    BLOCK_MS,
    COMMAND_TIMEOUT_S,
    DEFAULT_MAXLEN,
    DEFAULT_NAMESPACE,
    DEFAULT_SHARDS,
    MAX_PENDING_RECORDS,
    READ_COUNT,
    client_for,
)

__all__ = [
    "BACKOFF_S",
    "BLOCK_MS",
    "COMMAND_TIMEOUT_S",
    "DEFAULT_MAXLEN",
    "DEFAULT_NAMESPACE",
    "DEFAULT_SHARDS",
    "MAX_PENDING_RECORDS",
    "READ_COUNT",
    "AdminForwarder",
    "AdminRequest",
    "BusBooks",
    "BusDown",
    "BusGap",
    "BusItem",
    "BusLevels",
    "BusLevelsLost",
    "BusProducer",
    "BusProducerStatistics",
    "BusReader",
    "BusReaderStatistics",
    "BusScenario",
    "BusStatuses",
    "MarketUpstream",
    "Upstream",
    "client_for",
    "take_requests",
]
