"""An idle bus costs about what an idle server costs, and wakes up for the first client.

Real redis-server and `tickwire serve` processes; CPU read from /proc (Linux only).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from _redis import RedisServer, require_redis

require_redis()

from tickwire.feed import Batch, connect  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

TIMEOUT_S = 60


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _cores(pids: dict[str, int], window_s: float) -> dict[str, float]:
    before, t = {k: _cpu_s(p) for k, p in pids.items()}, time.monotonic()
    await trio.sleep(window_s)  # a measurement window, not a synchronisation
    dt = time.monotonic() - t
    return {k: (_cpu_s(p) - before[k]) / dt for k, p in pids.items()}


async def test_an_idle_bus_costs_little_and_a_client_wakes_it(
    redis_tcp: RedisServer, procs: Any
) -> None:
    url = redis_tcp.url
    producer = procs("producer", "--bus", url, "--role", "producer")
    gateway = procs("gateway", "--bus", url, "--role", "gateway", "--port", "0")
    with trio.fail_after(TIMEOUT_S):
        await producer.ready()
        await gateway.ready()
        assert redis_tcp.proc is not None
        pids = {"producer": producer.p.pid, "gateway": gateway.p.pid, "redis": redis_tcp.proc.pid}
        await trio.sleep(1)  # past start-up (imports, the first writes at the cadence)
        idle = await _cores(pids, 3)
        print("idle cores:", {k: round(v, 3) for k, v in idle.items()})
        async with connect(gateway.url, encoding="binary") as feed:
            await feed.subscribe("*")
            messages, started = 0, 0.0
            async for event in feed:
                if not (isinstance(event, Batch) and event.kind == "ticks"):
                    continue
                now = time.monotonic()
                started = started or now
                if now - started > 0.5:  # the producer is back at the cadence by now
                    messages += 1
                    if now - started > 1.5:
                        break
    # Measured here: ~0.075 core for the three, against ~0.75 when the producer stepped and wrote
    # at the cadence with nobody watching. Generous, for a shared machine.
    assert sum(idle.values()) < 0.3, idle
    # Idle, the producer steps every 50 ms (20 flushes a second); watched, at the 1 ms cadence.
    assert messages > 60, messages
